-- The loans service: products (versioned), loans and their installments, the
-- disbursement saga, repayments, the clients projection and close of business.

-- A product is a chain of versions; a loan points at the version it was applied for,
-- so changing a product never changes a loan that already exists.
CREATE TABLE products (
    id          text        NOT NULL,
    version     integer     NOT NULL,
    name        text        NOT NULL,
    currency    text        NOT NULL DEFAULT 'MAD',
    terms       jsonb       NOT NULL,
    is_current  boolean     NOT NULL DEFAULT true,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, version)
);
CREATE UNIQUE INDEX products_current ON products (id) WHERE is_current;

-- What loans knows of clients, from clients.events (never from the clients schema).
CREATE TABLE client_projection (
    client_id   text        PRIMARY KEY,
    partner_id  text,
    kyc_status  text        NOT NULL DEFAULT 'pending',
    blocked     boolean     NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE loans (
    id                      text          PRIMARY KEY,
    client_id               text          NOT NULL,
    partner_id              text          NOT NULL,
    product_id              text          NOT NULL,
    product_version         integer       NOT NULL,
    principal               numeric(14,2) NOT NULL CHECK (principal > 0),
    term                    integer       NOT NULL CHECK (term > 0),
    currency                text          NOT NULL DEFAULT 'MAD',
    status                  text          NOT NULL,
    submitted_by            text          NOT NULL,
    decided_by              text,
    decision_reason         text,
    msisdn                  text,
    disbursed_on            date,
    closed_on               date,
    written_off_on          date,
    principal_outstanding   numeric(14,2) NOT NULL DEFAULT 0,
    -- the product version's penalty, copied so close of business needs no JSON
    penalty_kind            text,
    penalty_value           numeric(18,6),
    penalty_tolerance_days  integer,
    days_in_arrears         integer       NOT NULL DEFAULT 0,
    arrears_bucket          text          NOT NULL DEFAULT 'current',
    arrears_as_of           date,
    bucket_changed_on       date,
    version                 integer       NOT NULL DEFAULT 1,
    created_at              timestamptz   NOT NULL DEFAULT now(),
    updated_at              timestamptz   NOT NULL DEFAULT now(),
    FOREIGN KEY (product_id, product_version) REFERENCES products (id, version)
);
CREATE INDEX loans_client ON loans (client_id);
CREATE INDEX loans_partner_status ON loans (partner_id, status);
CREATE INDEX loans_status ON loans (status);
CREATE INDEX loans_active_arrears ON loans (days_in_arrears) WHERE status = 'active';

-- status: pending (not yet due or due today), overdue, paid, written_off
CREATE TABLE installments (
    loan_id             text          NOT NULL REFERENCES loans (id),
    number              integer       NOT NULL,
    due_date            date          NOT NULL,
    principal_due       numeric(14,2) NOT NULL,
    interest_due        numeric(14,2) NOT NULL,
    fees_due            numeric(14,2) NOT NULL,
    penalties_due       numeric(14,2) NOT NULL DEFAULT 0,
    principal_paid      numeric(14,2) NOT NULL DEFAULT 0,
    interest_paid       numeric(14,2) NOT NULL DEFAULT 0,
    fees_paid           numeric(14,2) NOT NULL DEFAULT 0,
    penalties_paid      numeric(14,2) NOT NULL DEFAULT 0,
    status              text          NOT NULL DEFAULT 'pending',
    penalty_applied_on  date,
    paid_on             date,
    PRIMARY KEY (loan_id, number)
);
CREATE INDEX installments_open_due ON installments (due_date) WHERE status IN ('pending', 'overdue');
CREATE INDEX installments_overdue ON installments (loan_id, due_date) WHERE status = 'overdue';

CREATE TABLE repayments (
    payment_id      text          PRIMARY KEY,
    loan_id         text          NOT NULL,
    amount          numeric(14,2) NOT NULL,
    outcome         text          NOT NULL,   -- applied | rejected
    reason          text,
    allocation      jsonb         NOT NULL DEFAULT '[]',
    received_at     timestamptz   NOT NULL,
    recorded_at     timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX repayments_loan ON repayments (loan_id);

-- The persisted saga orchestrator (Eventuate-style saga instance).
CREATE TABLE sagas (
    id            text        PRIMARY KEY,
    type          text        NOT NULL,
    loan_id       text        NOT NULL,
    state         text        NOT NULL,
    current_step  text        NOT NULL,
    deadline      timestamptz,
    compensating  boolean     NOT NULL DEFAULT false,
    failed        boolean     NOT NULL DEFAULT false,
    attempts      integer     NOT NULL DEFAULT 0,
    data          jsonb       NOT NULL DEFAULT '{}',
    version       integer     NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (type, loan_id)
);
CREATE INDEX sagas_in_flight ON sagas (deadline) WHERE deadline IS NOT NULL;
CREATE INDEX sagas_state ON sagas (state, updated_at);

CREATE TABLE saga_timeline (
    id          bigserial   PRIMARY KEY,
    saga_id     text        NOT NULL REFERENCES sagas (id),
    at          timestamptz NOT NULL DEFAULT now(),
    event       text        NOT NULL,
    from_state  text,
    to_state    text        NOT NULL,
    detail      text        NOT NULL DEFAULT ''
);
CREATE INDEX saga_timeline_saga ON saga_timeline (saga_id, id);

-- Close of business: one row per business date makes a re-run a no-op.
CREATE TABLE cob_runs (
    business_date  date        PRIMARY KEY,
    status         text        NOT NULL,   -- running | completed
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    stats          jsonb       NOT NULL DEFAULT '{}'
);

CREATE TABLE portfolio_snapshots (
    business_date          date          PRIMARY KEY,
    loans_active           integer       NOT NULL,
    outstanding_principal  numeric(16,2) NOT NULL,
    par1_principal         numeric(16,2) NOT NULL,
    par30_principal        numeric(16,2) NOT NULL,
    par90_principal        numeric(16,2) NOT NULL,
    buckets                jsonb         NOT NULL,
    created_at             timestamptz   NOT NULL DEFAULT now()
);
