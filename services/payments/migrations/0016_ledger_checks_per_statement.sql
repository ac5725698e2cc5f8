-- The ledger's rules checked once per statement instead of once per line, so a close
-- of business posting a receivable line for each of a million loans pays for its lines
-- and not for a trigger call, a foreign-key probe and a deferred event per line. What
-- is enforced does not change:
--
--  * balances: each account's running totals move by ONE aggregated UPDATE per
--    statement (the accounts locked first in id order, so two statements never
--    deadlock); the CHECK still refuses a constrained account going negative;
--  * references: a line's entry, account and GL account must exist (the three
--    foreign keys become one anti-join each per statement, raising the same
--    foreign_key_violation), and a referenced account or GL account can be neither
--    deleted nor renamed, nor an entry or account table truncated;
--  * balance: an entry written in this transaction is checked at commit by its own
--    deferred trigger (journal_entries_balanced, unchanged); a line added to an entry
--    of an earlier transaction is checked at the end of its statement (stricter than
--    at commit: such a line never had a legitimate writer).

DROP TRIGGER journal_lines_apply ON journal_lines;
DROP FUNCTION ledger_apply_line();
DROP TRIGGER journal_lines_balanced ON journal_lines;
ALTER TABLE journal_lines DROP CONSTRAINT journal_lines_entry_id_fkey;
ALTER TABLE journal_lines DROP CONSTRAINT journal_lines_account_id_fkey;
ALTER TABLE journal_lines DROP CONSTRAINT journal_lines_gl_code_fkey;

CREATE FUNCTION ledger_apply_lines() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mine text := (txid_current() % 4294967296)::text;
    entries uuid[];
    older uuid[];
    codes text[];
    found integer;
    wanted integer;
    moved integer;
    missing text;
    unbalanced record;
BEGIN
    -- the lines' entries exist; those of an earlier transaction are checked below
    SELECT array_agg(DISTINCT entry_id) INTO entries FROM added_lines;
    SELECT count(*), array_agg(e.id) FILTER (WHERE e.xmin::text <> mine)
      INTO found, older FROM journal_entries e WHERE e.id = ANY (entries);
    IF found <> coalesce(cardinality(entries), 0) THEN
        SELECT x::text INTO missing FROM unnest(entries) x
         WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.id = x) LIMIT 1;
        RAISE EXCEPTION 'journal line of an unknown entry %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- their GL accounts exist
    SELECT array_agg(DISTINCT gl_code) INTO codes FROM added_lines WHERE gl_code IS NOT NULL;
    SELECT x INTO missing FROM unnest(codes) x
     WHERE NOT EXISTS (SELECT 1 FROM gl_accounts g WHERE g.code = x) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'journal line on an unknown GL account %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- each account locked in id order, then moved once by the sum of its lines
    PERFORM 1 FROM accounts a WHERE a.id IN (SELECT account_id FROM added_lines)
     ORDER BY a.id FOR UPDATE;
    UPDATE accounts a SET debits = a.debits + s.d, credits = a.credits + s.c
      FROM (SELECT account_id,
                   coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS d,
                   coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS c
              FROM added_lines GROUP BY account_id) s
     WHERE a.id = s.account_id;
    GET DIAGNOSTICS moved = ROW_COUNT;
    SELECT count(*) INTO wanted FROM (SELECT account_id FROM added_lines GROUP BY account_id) x;
    IF moved <> wanted THEN
        SELECT l.account_id INTO missing FROM added_lines l
         WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = l.account_id) LIMIT 1;
        RAISE EXCEPTION 'journal line on an unknown account %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- a line added to an entry of an earlier transaction: that entry must still balance
    IF older IS NOT NULL THEN
        FOR unbalanced IN
            SELECT x.entry_id AS id, count(*) AS n,
                   coalesce(sum(x.amount) FILTER (WHERE x.side = 'debit'), 0) AS d,
                   coalesce(sum(x.amount) FILTER (WHERE x.side = 'credit'), 0) AS c
              FROM journal_lines x WHERE x.entry_id = ANY (older) GROUP BY x.entry_id
        LOOP
            IF unbalanced.n < 2 OR unbalanced.d <> unbalanced.c THEN
                RAISE EXCEPTION
                    'journal entry % does not balance: % lines, debits %, credits %',
                    unbalanced.id, unbalanced.n, unbalanced.d, unbalanced.c
                    USING ERRCODE = 'check_violation';
            END IF;
        END LOOP;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER journal_lines_apply AFTER INSERT ON journal_lines
    REFERENCING NEW TABLE AS added_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_apply_lines();

-- What the foreign keys also guarded: a referenced row is never removed or renamed, and
-- neither table the lines point to is truncated.
CREATE FUNCTION ledger_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger''s % cannot be truncated', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_no_truncate();
CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_no_truncate();

CREATE FUNCTION ledger_account_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM journal_lines WHERE account_id = OLD.id) THEN
        RAISE EXCEPTION 'account % has journal lines', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_referenced BEFORE DELETE OR UPDATE OF id ON accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_account_referenced();

CREATE FUNCTION ledger_gl_account_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM journal_lines WHERE gl_code = OLD.code) THEN
        RAISE EXCEPTION 'GL account % has journal lines', OLD.code
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER gl_accounts_referenced BEFORE DELETE OR UPDATE OF code ON gl_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_gl_account_referenced();

-- Room on each page of accounts, so moving an account's totals is a HOT update (no
-- index entry written) — a close of business moves a million receivables a night.
ALTER TABLE accounts SET (fillfactor = 70);

-- The loans in non-accrual, found among a batch without reading every loan's row.
CREATE INDEX loan_dimensions_non_accrual ON loan_dimensions (loan_id)
    WHERE non_accrual_since IS NOT NULL;
