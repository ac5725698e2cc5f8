-- Payee validation before a group's payouts (loans' ValidatePayee): one lookup per saga
-- step, asked of the provider (GSMA account status) by a background job until it answers.
-- ``status``: pending (not asked yet, or asked without an answer) → confirmed | refused;
-- ``in_doubt_since`` is set once the provider failed to answer (told once to loans).
CREATE TABLE IF NOT EXISTS payee_lookups (
    id              uuid        PRIMARY KEY,
    saga_id         text        NOT NULL UNIQUE,
    request_hash    text        NOT NULL,
    loan_id         text        NOT NULL,
    client_id       text        NOT NULL,
    msisdn          text        NOT NULL,
    provider        text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'confirmed', 'refused')),
    account_status  text,
    reason          text,
    attempts        integer     NOT NULL DEFAULT 0,
    next_at         timestamptz NOT NULL DEFAULT now(),
    last_answer     text,
    in_doubt_since  timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz
);
CREATE INDEX IF NOT EXISTS payee_lookups_due ON payee_lookups (next_at)
    WHERE status = 'pending';
