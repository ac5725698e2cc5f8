-- The savings service: products (versioned), accounts with their holds and statement
-- lines, withdrawals (the saga's state), the clients projection and close of business.

-- A product is a chain of versions; an account points at the version it was opened on.
CREATE TABLE products (
    id          text        NOT NULL,
    version     integer     NOT NULL,
    name        text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('voluntary', 'compulsory', 'term_deposit')),
    currency    text        NOT NULL DEFAULT 'MAD',
    terms       jsonb       NOT NULL,
    is_current  boolean     NOT NULL DEFAULT true,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, version)
);
CREATE UNIQUE INDEX products_current ON products (id) WHERE is_current;

-- What savings knows of clients, from clients.events (never from the clients schema).
CREATE TABLE client_projection (
    client_id   text        PRIMARY KEY,
    partner_id  text,
    kyc_status  text        NOT NULL DEFAULT 'pending',
    blocked     boolean     NOT NULL DEFAULT false,
    phone       text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per account. ledger_balance is what it holds, held_balance what withdrawals in
-- flight have put aside; the available balance (ledger - held) is never negative. The
-- product version's interest terms are copied here so close of business needs no JSON.
CREATE TABLE accounts (
    id                      text          PRIMARY KEY,
    client_id               text          NOT NULL,
    partner_id              text          NOT NULL,
    product_id              text          NOT NULL,
    product_version         integer       NOT NULL,
    kind                    text          NOT NULL,
    status                  text          NOT NULL CHECK (status IN (
                                'pending_approval', 'active', 'dormant', 'matured', 'closed',
                                'rejected')),
    currency                text          NOT NULL DEFAULT 'MAD',
    ledger_balance          numeric(14,2) NOT NULL DEFAULT 0,
    held_balance            numeric(14,2) NOT NULL DEFAULT 0 CHECK (held_balance >= 0),
    opening_deposit         numeric(14,2) NOT NULL DEFAULT 0,
    opened_by               text          NOT NULL,
    approved_by             text,
    blocked                 boolean       NOT NULL DEFAULT false,
    block_reason            text,
    blocked_by              text,
    linked_loan_id          text,
    linked_loan_closed      boolean       NOT NULL DEFAULT false,
    -- interest terms of the product version
    annual_rate             numeric(9,6)  NOT NULL DEFAULT 0,
    interest_basis          text          NOT NULL DEFAULT 'daily_balance'
                                          CHECK (interest_basis IN ('daily_balance',
                                                                    'minimum_balance')),
    posting_period          text          CHECK (posting_period IN ('monthly', 'quarterly')),
    withholding_rate        numeric(9,6)  NOT NULL DEFAULT 0,
    dormant_after_months    integer,
    -- interest state: accrued through a business date, carried residue of the last posting
    accrued_through         date          NOT NULL,
    accrued_interest        numeric(24,10) NOT NULL DEFAULT 0,
    carried_interest        numeric(24,10) NOT NULL DEFAULT 0,
    period_min_balance      numeric(14,2),
    period_days             integer       NOT NULL DEFAULT 0,
    last_posted_on          date,
    -- term deposits
    term_months             integer,
    term_start              date,
    maturity_date           date,
    maturity_instruction    text          CHECK (maturity_instruction IN ('renew', 'pay_out')),
    early_break_penalty_rate numeric(9,6),
    last_client_txn_on      date,
    opened_on               date          NOT NULL,
    closed_on               date,
    created_at              timestamptz   NOT NULL DEFAULT now(),
    updated_at              timestamptz   NOT NULL DEFAULT now(),
    version                 integer       NOT NULL DEFAULT 1,
    CHECK (ledger_balance - held_balance >= 0),
    FOREIGN KEY (product_id, product_version) REFERENCES products (id, version)
);
CREATE INDEX accounts_client ON accounts (client_id);
CREATE INDEX accounts_partner_created ON accounts (partner_id, created_at DESC, id DESC);
CREATE INDEX accounts_accruing ON accounts (accrued_through) WHERE status IN ('active', 'dormant');
CREATE INDEX accounts_maturing ON accounts (maturity_date) WHERE kind = 'term_deposit' AND status = 'active';
CREATE INDEX accounts_linked_loan ON accounts (linked_loan_id) WHERE linked_loan_id IS NOT NULL;

-- The statement: one signed line per movement (credits positive). The balance is the
-- sum of the lines; txn_key makes each movement happen once.
CREATE TABLE transactions (
    id          bigserial     PRIMARY KEY,
    account_id  text          NOT NULL REFERENCES accounts (id),
    txn_key     text          NOT NULL UNIQUE,
    kind        text          NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'withdrawal_fee',
                                  'interest', 'withholding_tax')),
    amount      numeric(14,2) NOT NULL CHECK (amount <> 0),
    value_date  date          NOT NULL,
    channel     text,
    reference   text,
    created_by  text          NOT NULL,
    created_at  timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX transactions_account ON transactions (account_id, value_date, id);
CREATE INDEX transactions_value_date ON transactions (value_date);

-- The withdrawal saga: one row per withdrawal, its hold is amount + fee.
CREATE TABLE withdrawals (
    id                  text          PRIMARY KEY,
    account_id          text          NOT NULL REFERENCES accounts (id),
    client_id           text          NOT NULL,
    partner_id          text          NOT NULL,
    amount              numeric(14,2) NOT NULL CHECK (amount > 0),
    fee                 numeric(14,2) NOT NULL DEFAULT 0 CHECK (fee >= 0),
    msisdn              text          NOT NULL,
    status              text          NOT NULL CHECK (status IN (
                            'pending', 'in_doubt', 'paid', 'released', 'review')),
    requested_by        text          NOT NULL,
    requested_on        date          NOT NULL,
    reason              text,
    provider            text,
    provider_reference  text,
    created_at          timestamptz   NOT NULL DEFAULT now(),
    updated_at          timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX withdrawals_account ON withdrawals (account_id, created_at DESC);
CREATE INDEX withdrawals_open ON withdrawals (status, created_at) WHERE status IN ('pending', 'in_doubt', 'review');

-- Close of business: one row per business date, its progress and result. A run is
-- alive while its session holds the advisory lock.
CREATE TABLE cob_runs (
    business_date   date        PRIMARY KEY,
    run_id          text        NOT NULL DEFAULT gen_random_uuid()::text UNIQUE,
    status          text        NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    requested_by    text,
    step            text,
    attempts        integer     NOT NULL DEFAULT 1,
    error           text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz,
    finished_at     timestamptz,
    stats           jsonb       NOT NULL DEFAULT '{}'
);
