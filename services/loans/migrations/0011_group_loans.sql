-- Group loans with joint liability (issue 15): one loan per member under one group loan,
-- approved together (maker-checker) and disbursed by one saga (sagas.type
-- 'group_disbursement', sagas.loan_id = the group loan's id); each member's saga step
-- has its own id (group_saga_legs.leg_id: the reservation id sent to clients and the
-- payout's idempotency key at payments).
CREATE TABLE IF NOT EXISTS group_loans (
    id                 text        PRIMARY KEY,
    group_id           text        NOT NULL,
    partner_id         text        NOT NULL,
    product_id         text        NOT NULL,
    status             text        NOT NULL,   -- submitted | approved | active | closed | rejected | failed
    cover_arrears      boolean     NOT NULL DEFAULT false,
    arrears_tolerance_days integer NOT NULL DEFAULT 0 CHECK (arrears_tolerance_days >= 0),
    submitted_by       text        NOT NULL,
    decided_by         text,
    saga_id            text,
    in_arrears         boolean     NOT NULL DEFAULT false,
    office_id          text        NOT NULL DEFAULT 'ho',
    office_path        text        NOT NULL DEFAULT 'ho',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- one live group loan per group (a new cycle only once the last one closed)
CREATE UNIQUE INDEX IF NOT EXISTS group_loans_one_live ON group_loans (group_id)
    WHERE status IN ('submitted', 'approved', 'active');
CREATE INDEX IF NOT EXISTS group_loans_active ON group_loans (group_id) WHERE status = 'active';

CREATE TABLE IF NOT EXISTS group_loan_members (
    group_loan_id  text NOT NULL REFERENCES group_loans (id),
    loan_id        text PRIMARY KEY,
    client_id      text NOT NULL,
    position       integer NOT NULL,
    UNIQUE (group_loan_id, client_id)
);

CREATE TABLE IF NOT EXISTS group_saga_legs (
    leg_id   text PRIMARY KEY,
    saga_id  text NOT NULL REFERENCES sagas (id),
    loan_id  text NOT NULL
);
CREATE INDEX IF NOT EXISTS group_saga_legs_saga ON group_saga_legs (saga_id);

-- group repayments: what one collection for the group gave each member
CREATE TABLE IF NOT EXISTS group_repayments (
    payment_id     text          PRIMARY KEY,
    group_loan_id  text          NOT NULL REFERENCES group_loans (id),
    amount         numeric(14,2) NOT NULL,
    unallocated    numeric(14,2) NOT NULL,
    lines          jsonb         NOT NULL,
    received_at    timestamptz   NOT NULL,
    recorded_at    timestamptz   NOT NULL DEFAULT now()
);
