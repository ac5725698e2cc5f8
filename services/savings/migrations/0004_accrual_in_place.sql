-- Close of business updates every accruing account once a night (accruals) and at each
-- period end (postings). Both now leave every indexed column alone, so a row's new
-- version can stay on its page as a heap-only tuple, with no entry written to any of
-- the table's indexes — provided the page has room for it:
--
-- * the index on accrued_through goes: the accrual changes that column on every row
--   (each update then wrote a new entry into all seven indexes); the one query that read
--   it, the earliest date not accrued when no night has ever run, scans instead;
-- * pages are filled to half on insert and the room is kept for the nightly versions
--   (the previous night's are pruned when the page is next read).
--
-- Pages written before this migration gain the room as they are rewritten (VACUUM FULL
-- or pg_repack in a maintenance window for an existing large table).

DROP INDEX IF EXISTS accounts_accruing;
ALTER TABLE accounts SET (fillfactor = 50);
