-- The organisation in loans (issue 15): every client and loan belongs to one office (and
-- its materialised path, ``ho/r-souss/b-agadir``) and at most one loan officer, from
-- clients.events. Rows from before the organisation belong to the head office ``ho``.
ALTER TABLE client_projection
    ADD COLUMN IF NOT EXISTS office_id   text NOT NULL DEFAULT 'ho',
    ADD COLUMN IF NOT EXISTS office_path text NOT NULL DEFAULT 'ho',
    ADD COLUMN IF NOT EXISTS officer_id  text,
    ADD COLUMN IF NOT EXISTS full_name   text,
    ADD COLUMN IF NOT EXISTS phone       text;

ALTER TABLE loans
    ADD COLUMN IF NOT EXISTS office_id   text NOT NULL DEFAULT 'ho',
    ADD COLUMN IF NOT EXISTS office_path text NOT NULL DEFAULT 'ho',
    ADD COLUMN IF NOT EXISTS officer_id  text,
    -- the restructuring marker (also added by the servicing migration; the portfolio
    -- snapshot reads it)
    ADD COLUMN IF NOT EXISTS restructured boolean NOT NULL DEFAULT false;
-- an office's subtree is a prefix of the path; an officer's sheet reads its active loans
CREATE INDEX IF NOT EXISTS loans_office_path ON loans (office_path text_pattern_ops);
CREATE INDEX IF NOT EXISTS loans_officer_active ON loans (officer_id) WHERE status = 'active';
-- "collected that day" reads one business day of repayments
CREATE INDEX IF NOT EXISTS repayments_received_at ON repayments (received_at);

CREATE TABLE IF NOT EXISTS office_projection (
    office_id   text PRIMARY KEY,
    kind        text NOT NULL,
    name        text NOT NULL,
    path        text NOT NULL,
    status      text NOT NULL DEFAULT 'open',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO office_projection (office_id, kind, name, path)
VALUES ('ho', 'head_office', 'Head office', 'ho') ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS staff_projection (
    staff_id    text PRIMARY KEY,
    full_name   text NOT NULL,
    role        text NOT NULL,
    office_id   text NOT NULL,
    office_path text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS group_projection (
    group_id    text PRIMARY KEY,
    partner_id  text NOT NULL,
    name        text NOT NULL,
    leader_id   text NOT NULL,
    office_id   text NOT NULL DEFAULT 'ho',
    office_path text NOT NULL DEFAULT 'ho',
    officer_id  text,
    dissolved   boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS group_projection_officer ON group_projection (officer_id)
    WHERE NOT dissolved;
CREATE TABLE IF NOT EXISTS group_members (
    group_id   text NOT NULL REFERENCES group_projection (group_id),
    client_id  text NOT NULL,
    PRIMARY KEY (group_id, client_id)
);
CREATE INDEX IF NOT EXISTS group_members_client ON group_members (client_id);

-- Close of business: the portfolio per date x office x officer x product ('' = no
-- officer). Its rows of one date sum exactly to that date's portfolio_snapshots row.
CREATE TABLE IF NOT EXISTS portfolio_office_snapshots (
    business_date          date          NOT NULL,
    office_id              text          NOT NULL,
    office_path            text          NOT NULL,
    officer_id             text          NOT NULL,
    product_id             text          NOT NULL,
    loans_active           integer       NOT NULL,
    outstanding_principal  numeric(16,2) NOT NULL,
    outstanding_interest   numeric(16,2) NOT NULL,
    outstanding_fees       numeric(16,2) NOT NULL,
    outstanding_penalties  numeric(16,2) NOT NULL,
    par1_principal         numeric(16,2) NOT NULL,
    par30_principal        numeric(16,2) NOT NULL,
    par90_principal        numeric(16,2) NOT NULL,
    current_loans          integer       NOT NULL,
    current_principal      numeric(16,2) NOT NULL,
    b1_30_loans            integer       NOT NULL,
    b1_30_principal        numeric(16,2) NOT NULL,
    b31_60_loans           integer       NOT NULL,
    b31_60_principal       numeric(16,2) NOT NULL,
    b61_90_loans           integer       NOT NULL,
    b61_90_principal       numeric(16,2) NOT NULL,
    b90_loans              integer       NOT NULL,
    b90_principal          numeric(16,2) NOT NULL,
    restructured_loans     integer       NOT NULL,
    restructured_principal numeric(16,2) NOT NULL,
    disbursed_loans        integer       NOT NULL,
    disbursed_principal    numeric(16,2) NOT NULL,
    collected_count        integer       NOT NULL,
    collected_amount       numeric(16,2) NOT NULL,
    PRIMARY KEY (business_date, office_id, officer_id, product_id)
);
CREATE INDEX IF NOT EXISTS portfolio_office_snapshots_path
    ON portfolio_office_snapshots (office_path text_pattern_ops, business_date);

-- Collection sheets: what an officer collected in cash against a sheet, one line per
-- loan (the line's collection id is the payment id of its repayment).
CREATE TABLE IF NOT EXISTS cash_collections (
    collection_id     text          PRIMARY KEY,
    sheet_id          text          NOT NULL,
    loan_id           text          NOT NULL,
    client_id         text          NOT NULL,
    group_id          text,
    amount            numeric(14,2) NOT NULL CHECK (amount > 0),
    currency          text          NOT NULL DEFAULT 'MAD',
    office_id         text          NOT NULL,
    office_path       text          NOT NULL,
    branch_office_id  text          NOT NULL,
    officer_id        text,
    collected_on      date          NOT NULL,
    collected_at      timestamptz   NOT NULL,
    recorded_by       text          NOT NULL,
    recorded_at       timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (sheet_id, loan_id)
);
CREATE INDEX IF NOT EXISTS cash_collections_branch_day
    ON cash_collections (branch_office_id, collected_on);

-- A branch's day-end cash: expected (the day's recorded collections) vs declared.
CREATE TABLE IF NOT EXISTS cash_reconciliations (
    reconciliation_id text          PRIMARY KEY,
    office_id         text          NOT NULL,
    office_path       text          NOT NULL,
    business_date     date          NOT NULL,
    expected          numeric(16,2) NOT NULL,
    declared          numeric(16,2) NOT NULL,
    difference        numeric(16,2) NOT NULL,
    collections       integer       NOT NULL,
    declared_by       text          NOT NULL,
    note              text          NOT NULL DEFAULT '',
    created_at        timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (office_id, business_date)
);
