-- Offices (from the client projection), the compulsory savings the loans saga holds,
-- and standing instructions paying due installments from voluntary savings.

ALTER TABLE client_projection ADD COLUMN office_id text, ADD COLUMN office_path text;

-- The client's office, copied at opening and moved with ClientTransferred: an
-- office-scoped token sees the accounts of its subtree only.
ALTER TABLE accounts ADD COLUMN office_id text, ADD COLUMN office_path text;
CREATE INDEX accounts_office_path ON accounts (office_path text_pattern_ops);

-- One row per disbursement saga asking for a loan's compulsory savings.
CREATE TABLE compulsory_holds (
    saga_id         text          PRIMARY KEY,
    loan_id         text          NOT NULL,
    client_id       text          NOT NULL,
    partner_id      text          NOT NULL,
    loan_product_id text          NOT NULL,
    principal       numeric(14,2) NOT NULL,
    required        numeric(14,2) NOT NULL CHECK (required >= 0),
    held            numeric(14,2) NOT NULL DEFAULT 0,
    status          text          NOT NULL CHECK (status IN ('waiting', 'held', 'released',
                                                             'freed')),
    reason          text,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX compulsory_holds_loan ON compulsory_holds (loan_id);
CREATE INDEX compulsory_holds_waiting ON compulsory_holds (loan_id) WHERE status = 'waiting';

-- A client's instruction: pay what a loan says is due from this voluntary account.
CREATE TABLE standing_instructions (
    account_id  text          NOT NULL REFERENCES accounts (id),
    loan_id     text          NOT NULL,
    max_amount  numeric(14,2) CHECK (max_amount IS NULL OR max_amount > 0),
    active      boolean       NOT NULL DEFAULT true,
    created_by  text          NOT NULL,
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, loan_id)
);
CREATE INDEX standing_instructions_loan ON standing_instructions (loan_id) WHERE active;

ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check CHECK (kind IN (
    'deposit', 'withdrawal', 'withdrawal_fee', 'interest', 'withholding_tax',
    'loan_repayment'));
