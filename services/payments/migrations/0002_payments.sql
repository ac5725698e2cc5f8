-- Payouts (disbursements and refunds), collections, and callback receipts.

CREATE TABLE payouts (
    id                     uuid        PRIMARY KEY,
    kind                   text        NOT NULL CHECK (kind IN ('disbursement', 'refund')),
    saga_id                text        NOT NULL UNIQUE,   -- the idempotency key of the step
    correlation_id         uuid        NOT NULL UNIQUE,   -- X-CorrelationID sent to the provider
    request_hash           text        NOT NULL,
    loan_id                text        NOT NULL,
    client_id              text        NOT NULL DEFAULT '',
    partner_id             text        NOT NULL DEFAULT '',
    payment_id             uuid,                          -- for refunds: the repayment refunded
    msisdn                 text        NOT NULL,
    amount                 numeric(14,2) NOT NULL CHECK (amount > 0),
    currency               text        NOT NULL DEFAULT 'MAD',
    provider               text        NOT NULL,
    deadline               timestamptz NOT NULL,
    status                 text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'submitted', 'completed', 'failed')),
    server_correlation_id  text,
    provider_reference     text,
    attempts               integer     NOT NULL DEFAULT 0,
    next_attempt_at        timestamptz NOT NULL DEFAULT now(),
    last_error             text,
    failure_reason         text,
    resolved_by            text,
    journal_transfer_id    text        NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    completed_at           timestamptz
);
CREATE INDEX payouts_due ON payouts (next_attempt_at) WHERE status IN ('pending', 'submitted');
CREATE INDEX payouts_loan ON payouts (loan_id);
CREATE INDEX payouts_reconciliation ON payouts (provider, completed_at) WHERE status = 'completed';

CREATE TABLE payments (
    id                 uuid        PRIMARY KEY,
    loan_id            text        NOT NULL,
    amount             numeric(14,2) NOT NULL CHECK (amount > 0),
    currency           text        NOT NULL DEFAULT 'MAD',
    payer_msisdn       text,
    provider           text        NOT NULL,
    source             text        NOT NULL CHECK (source IN ('callback', 'api')),
    partner_id         text,
    external_ref       text        NOT NULL,
    provider_reference text,
    status             text        NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'posted', 'refund_pending', 'refunded', 'refund_failed')),
    rejection_reason   text,
    received_at        timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, source, external_ref)
);
CREATE UNIQUE INDEX payments_provider_ref ON payments (provider, provider_reference)
    WHERE provider_reference IS NOT NULL;
CREATE INDEX payments_loan ON payments (loan_id);

CREATE TABLE webhook_receipts (
    provider    text        NOT NULL,
    webhook_id  text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    outcome     text        NOT NULL,
    PRIMARY KEY (provider, webhook_id)
);
