-- One provider transaction is credited once, whichever way it reaches us (a signed
-- callback or a wallet's report through POST /v1/repayments); a wallet's report is
-- confirmed with the provider before anything is credited; a refund is paid only
-- for money the provider confirmed we received; reconciliation alerts and runs.

-- A wallet's report waits for the provider's confirmation as `unconfirmed`, and ends
-- `rejected_unconfirmed` if the provider never confirms it. The allowed statuses are
-- extended, not rewritten, so statuses another migration added are kept.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT coalesce(array_agg(DISTINCT m[1]), ARRAY[]::text[]) INTO allowed
      FROM pg_constraint c,
           LATERAL regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
     WHERE c.conrelid = 'payments'::regclass AND c.conname = 'payments_status_check';
    allowed := allowed || ARRAY['received', 'posted', 'refund_pending', 'refunded',
                                'refund_failed', 'unconfirmed', 'rejected_unconfirmed'];
    SELECT array_agg(DISTINCT s ORDER BY s) INTO allowed FROM unnest(allowed) AS s;
    ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_status_check;
    EXECUTE format('ALTER TABLE payments ADD CONSTRAINT payments_status_check'
                   ' CHECK (status = ANY (%L::text[]))', allowed);
END $$;

ALTER TABLE payments
    ADD COLUMN IF NOT EXISTS confirmed_at        timestamptz,
    ADD COLUMN IF NOT EXISTS confirm_attempts    integer     NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS confirm_next_at     timestamptz,
    ADD COLUMN IF NOT EXISTS confirm_deadline    timestamptz,
    ADD COLUMN IF NOT EXISTS confirm_last_answer text;

-- Every payment recorded before this migration was credited when it was recorded.
UPDATE payments SET confirmed_at = received_at
 WHERE confirmed_at IS NULL AND status NOT IN ('unconfirmed', 'rejected_unconfirmed');

-- A credited payment is a confirmed one, and only a confirmed one is credited.
ALTER TABLE payments ADD CONSTRAINT payments_credited_only_when_confirmed CHECK (
    (status IN ('unconfirmed', 'rejected_unconfirmed')) = (confirmed_at IS NULL));

-- The wallet's report must carry the provider's transaction reference from now on;
-- (provider, provider_reference) is unique across both sources (callback and api).
CREATE UNIQUE INDEX IF NOT EXISTS payments_provider_ref ON payments (provider, provider_reference)
    WHERE provider_reference IS NOT NULL;
CREATE INDEX IF NOT EXISTS payments_unconfirmed_due ON payments (confirm_next_at)
    WHERE status = 'unconfirmed';

-- A refund payout is only ever queued for a payment the provider confirmed.
CREATE FUNCTION refund_only_confirmed_payments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind = 'refund' AND NOT EXISTS (
        SELECT 1 FROM payments WHERE id = NEW.payment_id AND confirmed_at IS NOT NULL) THEN
        RAISE EXCEPTION 'refund of payment % refused: the provider has not confirmed it',
            NEW.payment_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER payouts_refund_only_confirmed BEFORE INSERT ON payouts
    FOR EACH ROW EXECUTE FUNCTION refund_only_confirmed_payments();

-- What reconciliation found that does not match, once per provider, day, kind and
-- reference; an operator resolves it with a note (audited in the row itself).
CREATE TABLE reconciliation_alerts (
    id              uuid          PRIMARY KEY,
    provider        text          NOT NULL,
    business_date   date          NOT NULL,
    mismatch        text          NOT NULL
        CHECK (mismatch IN ('ours_only', 'theirs_only', 'amount_mismatch')),
    reference       text          NOT NULL,
    kind            text          NOT NULL DEFAULT '',
    loan_id         text          NOT NULL DEFAULT '',
    ours_amount     numeric(14,2),
    theirs_amount   numeric(14,2),
    detail          jsonb         NOT NULL DEFAULT '{}'::jsonb,
    status          text          NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    raised_at       timestamptz   NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolved_by     text,
    resolution_note text,
    UNIQUE (provider, business_date, mismatch, reference)
);
CREATE INDEX reconciliation_alerts_keyset ON reconciliation_alerts (raised_at, id);
CREATE INDEX reconciliation_alerts_open ON reconciliation_alerts (provider, business_date)
    WHERE status = 'open';

-- The last run per provider and business day (the scheduler's memory, across replicas).
CREATE TABLE reconciliation_runs (
    provider       text        NOT NULL,
    business_date  date        NOT NULL,
    runs           integer     NOT NULL DEFAULT 0,
    last_run_at    timestamptz NOT NULL,
    last_summary   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (provider, business_date)
);

-- Singletons across replicas hold a lease row (the reconciliation scheduler).
CREATE TABLE job_leases (
    name        text        PRIMARY KEY,
    holder      text        NOT NULL,
    expires_at  timestamptz NOT NULL
);
