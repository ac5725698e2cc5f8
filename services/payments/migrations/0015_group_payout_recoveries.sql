-- Payouts a failed group disbursement left with members
-- (GroupLoanDisbursementFailed.payouts_to_recover), as recovery requests for operators.

-- A member paid out while the group disbursement failed: the money is in the member's
-- wallet and the loan's portfolio; operators record how it ends (maker-checker).
CREATE TABLE group_payout_recoveries (
    id             uuid          PRIMARY KEY,
    group_id       text          NOT NULL,
    group_loan_id  text          NOT NULL,
    saga_id        text          NOT NULL,
    loan_id        text          NOT NULL,
    client_id      text          NOT NULL DEFAULT '',
    msisdn         text,
    payout_id      uuid,
    payout_status  text,
    amount         numeric(14,2) NOT NULL CHECK (amount >= 0),
    recovered      numeric(14,2) NOT NULL DEFAULT 0 CHECK (recovered >= 0),
    written_off    numeric(14,2) NOT NULL DEFAULT 0 CHECK (written_off >= 0),
    currency       text          NOT NULL DEFAULT 'MAD',
    reason         text          NOT NULL DEFAULT '',
    status         text          NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'recovered', 'written_off')),
    created_at     timestamptz   NOT NULL DEFAULT now(),
    closed_at      timestamptz,
    UNIQUE (saga_id, loan_id),
    CHECK (recovered + written_off <= amount)
);
CREATE INDEX group_payout_recoveries_open ON group_payout_recoveries (created_at, id)
    WHERE status = 'open';
CREATE INDEX group_payout_recoveries_loan ON group_payout_recoveries (loan_id);
CREATE INDEX group_payout_recoveries_queue ON group_payout_recoveries (status, created_at, id);

-- Collections matched to a recovery (the member gave the money back), once each.
CREATE TABLE group_payout_recovery_payments (
    payment_id   uuid          PRIMARY KEY REFERENCES payments (id),
    recovery_id  uuid          NOT NULL REFERENCES group_payout_recoveries (id),
    amount       numeric(14,2) NOT NULL CHECK (amount > 0),
    journal_id   uuid          NOT NULL,
    matched_at   timestamptz   NOT NULL DEFAULT now()
);

-- The outcome of a recovery is decided by two operators, like the other decisions that
-- move money. The allowed kinds are extended, not rewritten.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT coalesce(array_agg(DISTINCT m[1]), ARRAY[]::text[]) INTO allowed
      FROM pg_constraint c,
           LATERAL regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
     WHERE c.conrelid = 'payout_approvals'::regclass
       AND c.conname = 'payout_approvals_kind_check';
    allowed := allowed || ARRAY['settlement', 'refund_retry', 'held_payment',
                                'group_recovery'];
    SELECT array_agg(DISTINCT s ORDER BY s) INTO allowed FROM unnest(allowed) AS s;
    ALTER TABLE payout_approvals DROP CONSTRAINT IF EXISTS payout_approvals_kind_check;
    EXECUTE format('ALTER TABLE payout_approvals ADD CONSTRAINT payout_approvals_kind_check'
                   ' CHECK (kind = ANY (%L::text[]))', allowed);
END $$;
