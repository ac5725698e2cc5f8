-- An installment turning overdue is updated in place (a heap-only, HOT, update).
--
-- PostgreSQL updates a row in place, without a new entry in any index, only when no
-- column any index references changes, predicates of partial indexes included, and the
-- new version fits on the row's page. The partial indexes on status (open: pending or
-- overdue; overdue) made close of business's marking of pending installments overdue
-- (240 000 rows on a catch-up night at 1.24 M loans) a full update: a new entry in every
-- index of installments and, right after a checkpoint, a full-page image of every index
-- page it touched. Now no index names status:
--
-- * is_open (pending or overdue) is a stored generated column: it stays true from
--   pending to overdue, and the open indexes are partial on it. It changes only when an
--   installment is paid or written off (or reopened by a rebuilt schedule), which is a
--   full update as before.
-- * installments_overdue (loan_id, due_date) WHERE status = 'overdue' is gone: the queries
--   that read it (close of business's ageing, a repayment's re-ageing) name
--   is_open AND status = 'overdue' and read the open installments by loan and due date
--   (installments_open_by_loan, now on (loan_id, due_date); the per-office snapshot's sum
--   by loan reads it as before).
-- * fillfactor 85 keeps 15 % of each heap page free for the new versions of its rows. It
--   is set before the ADD COLUMN: a stored generated column rewrites the table, and the
--   rewrite fills the new pages to the new fillfactor (setting it alone would apply only
--   to pages written from then on).
--
-- Cost on an existing table: the ADD COLUMN rewrites installments and rebuilds its
-- indexes under an ACCESS EXCLUSIVE lock (no read or write of installments meanwhile, so
-- no repayment, due list or close of business), about as long as copying the table once
-- (the index drops come first so that only the two remaining indexes are rebuilt with
-- it), and the table grows by the free space fillfactor leaves (~18 %). Apply it outside
-- business hours; the migrations runner's lock_timeout makes it give up, not queue behind
-- live traffic, when the lock cannot be had.
DROP INDEX IF EXISTS installments_open_due;
DROP INDEX IF EXISTS installments_overdue;
DROP INDEX IF EXISTS installments_open_by_loan;

ALTER TABLE installments SET (fillfactor = 85);
ALTER TABLE installments
    ADD COLUMN is_open boolean NOT NULL GENERATED ALWAYS AS (status IN ('pending', 'overdue')) STORED;

-- open installments by due date: the due list (scope=unpaid), close of business's marking,
-- reminders and the accrual feed's fees of the date
CREATE INDEX installments_open_due ON installments (due_date) WHERE is_open;
-- open installments by loan, oldest first: the ageing's and a repayment's oldest overdue
-- installment, what a loan still owes (per-office snapshot, collection sheets)
CREATE INDEX installments_open_by_loan ON installments (loan_id, due_date) WHERE is_open;
