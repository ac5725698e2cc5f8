-- The day's payments, listed with a keyset (time, id) per table, and the audit of
-- operator retries of refunds held for review.

CREATE INDEX IF NOT EXISTS payments_received_keyset ON payments (received_at, id);
CREATE INDEX IF NOT EXISTS payouts_created_keyset ON payouts (created_at, id);
CREATE INDEX IF NOT EXISTS payouts_refunds_of ON payouts (payment_id, created_at)
    WHERE payment_id IS NOT NULL;

-- One row per operator retry of a held refund: who asked, when, and the payout it queued.
CREATE TABLE refund_retries (
    id                  bigserial     PRIMARY KEY,
    payment_id          uuid          NOT NULL REFERENCES payments (id),
    payout_id           uuid          NOT NULL UNIQUE REFERENCES payouts (id),
    previous_payout_id  uuid          REFERENCES payouts (id),
    attempt             integer       NOT NULL CHECK (attempt >= 1),
    amount              numeric(14,2) NOT NULL CHECK (amount > 0),
    msisdn              text          NOT NULL,
    requested_by        text          NOT NULL,
    note                text          NOT NULL DEFAULT '',
    idempotency_key     text          NOT NULL,
    requested_at        timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (payment_id, attempt)
);
CREATE INDEX refund_retries_payment ON refund_retries (payment_id, attempt);

-- Refunds held for review are found from these two small sets, never by scanning payments.
CREATE INDEX payments_refund_failed ON payments (id) WHERE status = 'refund_failed';
CREATE INDEX payouts_failed_refunds ON payouts (payment_id)
    WHERE kind = 'refund' AND status = 'failed';
