-- Doubt is a state, not a failure: a payout whose outcome the provider has not told us
-- after its deadline is `in_doubt` (nothing reversed), queried at a slower pace until
-- the provider's word, reconciliation or an operator's settlement with evidence (maker-
-- checker) settles it. A resend carries the first request's body byte for byte.

ALTER TABLE payouts DROP CONSTRAINT IF EXISTS payouts_status_check;
ALTER TABLE payouts ADD CONSTRAINT payouts_status_check
    CHECK (status IN ('pending', 'submitted', 'in_doubt', 'completed', 'failed'));

-- Set (before the first request leaves) to the request's `requestDate`: every resend
-- carries the same body, and a payout without it was never sent.
ALTER TABLE payouts ADD COLUMN request_date    timestamptz;
ALTER TABLE payouts ADD COLUMN in_doubt_since  timestamptz;
ALTER TABLE payouts ADD COLUMN in_doubt_reason text;
ALTER TABLE payouts ADD COLUMN doubt_queries   integer NOT NULL DEFAULT 0;
-- An approved refund retry of an in-doubt refund: send the same request again once.
ALTER TABLE payouts ADD COLUMN resend_requested boolean NOT NULL DEFAULT false;

DROP INDEX IF EXISTS payouts_due;
CREATE INDEX payouts_due ON payouts (next_attempt_at)
    WHERE status IN ('pending', 'submitted', 'in_doubt');
CREATE INDEX payouts_in_doubt ON payouts (in_doubt_since, id) WHERE status = 'in_doubt';

-- Operator decisions that move money, maker-checker: one operator proposes, another
-- approves. `settlement`: an in-doubt payout settled with evidence; `refund_retry`: a
-- refund paid again. At most one open proposal per payout / payment.
CREATE TABLE payout_approvals (
    id               bigserial   PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('settlement', 'refund_retry')),
    target_id        uuid        NOT NULL,      -- the payout (settlement) or payment (retry)
    body             jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'proposed'
        CHECK (status IN ('proposed', 'approved', 'superseded')),
    proposed_by      text        NOT NULL,
    proposed_at      timestamptz NOT NULL DEFAULT now(),
    proposal_key     text        NOT NULL,
    approved_by      text,
    approved_at      timestamptz,
    outcome          jsonb,
    CHECK (approved_by IS NULL OR approved_by <> proposed_by)
);
CREATE UNIQUE INDEX payout_approvals_open ON payout_approvals (kind, target_id)
    WHERE status = 'proposed';

-- The audit: every proposal, approval, refusal and settlement, append-only.
CREATE TABLE payout_audit (
    id           bigserial   PRIMARY KEY,
    payout_id    uuid,
    payment_id   uuid,
    approval_id  bigint      REFERENCES payout_approvals (id),
    action       text        NOT NULL,
    actor        text        NOT NULL,
    detail       jsonb       NOT NULL DEFAULT '{}',
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payout_audit_payout ON payout_audit (payout_id, id);
CREATE INDEX payout_audit_payment ON payout_audit (payment_id, id);

-- A retry of an in-doubt refund re-sends the same payout: several retries may name it.
ALTER TABLE refund_retries DROP CONSTRAINT IF EXISTS refund_retries_payout_id_key;
ALTER TABLE refund_retries ADD COLUMN approved_by text;
ALTER TABLE refund_retries ADD COLUMN mode text NOT NULL DEFAULT 'new_attempt'
    CHECK (mode IN ('new_attempt', 'resend'));
