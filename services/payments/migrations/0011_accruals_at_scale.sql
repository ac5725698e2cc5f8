-- A close of business for a large portfolio: the day's accruals are posted set-based as
-- a few entries, one per (office, interest income GL account), each with a receivable
-- line per loan and ONE aggregated income line — so the income account's row is moved
-- once per office, not once per loan.

-- Idempotency per business date and loan (whatever batch a loan comes in): a loan
-- accrues once per date.
CREATE TABLE loan_accruals (
    business_date date NOT NULL,
    loan_id       text NOT NULL,
    amount        numeric(14,2) NOT NULL CHECK (amount > 0),
    transfer_id   text NOT NULL,
    PRIMARY KEY (business_date, loan_id)
);
-- the per-loan accrual entries posted before this migration
INSERT INTO loan_accruals (business_date, loan_id, amount, transfer_id)
SELECT business_date, loan_id, amount, transfer_id FROM journal_entries
 WHERE kind = 'interest_accrual' AND loan_id IS NOT NULL
ON CONFLICT DO NOTHING;

-- The balance check at commit, once per entry: an entry written by this transaction is
-- checked by its own deferred trigger (journal_entries_balanced, which sees all its
-- lines), so its lines need not each sum the whole entry again (that was quadratic for
-- an entry of many lines). A line added to an entry of an earlier transaction is
-- checked as before. (An entry inserted in a subtransaction has another xmin: its lines
-- are checked in full — slower, never weaker.)
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    entry uuid;
    d numeric;
    c numeric;
    n integer;
BEGIN
    IF TG_TABLE_NAME = 'journal_entries' THEN
        entry := NEW.id;
    ELSE
        entry := NEW.entry_id;
        IF EXISTS (SELECT 1 FROM journal_entries je WHERE je.id = entry
                    AND je.xmin::text = (txid_current() % 4294967296)::text) THEN
            RETURN NULL;
        END IF;
    END IF;
    SELECT coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0),
           coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0), count(*)
      INTO d, c, n FROM journal_lines WHERE entry_id = entry;
    IF n < 2 OR d <> c THEN
        RAISE EXCEPTION 'journal entry % does not balance: % lines, debits %, credits %',
            entry, n, d, c USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
