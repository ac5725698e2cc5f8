-- What each loan's open installments still owe, summed per loan by close of business's
-- per-office snapshot (portfolio_snapshot.TAKE): read in loan order through this index,
-- not through the primary key with every paid installment filtered out. Only loan_id is
-- indexed, so a repayment that leaves an installment open (paid columns only) can still
-- update it in place (HOT); one that closes it changes status, which the other partial
-- indexes on status already make a full update.
CREATE INDEX IF NOT EXISTS installments_open_by_loan ON installments (loan_id)
    WHERE status IN ('pending', 'overdue');
