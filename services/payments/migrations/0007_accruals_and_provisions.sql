-- Accrual accounting and loan-loss provisioning, run per business date.

-- Provision rates per arrears bucket, and for restructured loans, as data. The default
-- is a reasonable starting point for a microfinance portfolio, edited with
-- PUT /v1/provisioning/rates. A loan's required provision is its outstanding
-- principal times the rate of the bucket its days in arrears fall in (the higher of
-- that and the restructured rate when it was restructured).
CREATE TABLE provision_rates (
    bucket      text PRIMARY KEY CHECK (length(bucket) BETWEEN 1 AND 40),
    min_days    integer CHECK (min_days >= 0),
    max_days    integer CHECK (max_days >= 0),
    rate        numeric(7,6) NOT NULL CHECK (rate >= 0 AND rate <= 1),
    restructured boolean NOT NULL DEFAULT false,
    CHECK (restructured OR min_days IS NOT NULL),
    CHECK (max_days IS NULL OR max_days >= min_days)
);
INSERT INTO provision_rates (bucket, min_days, max_days, rate, restructured) VALUES
 ('current', 0,   0,    0,    false),
 ('1-30',    1,   30,   0.05, false),
 ('31-60',   31,  60,   0.25, false),
 ('61-90',   61,  90,   0.50, false),
 ('91-180',  91,  180,  0.75, false),
 ('180+',    181, NULL, 1,    false),
 ('restructured', NULL, NULL, 0.25, true);

-- One row per business date (and batch of loans) posted (the idempotency of a close of business).
CREATE TABLE accrual_runs (
    business_date  date NOT NULL,
    batch          integer NOT NULL DEFAULT 0,
    basis          text NOT NULL,
    loans          integer NOT NULL,
    accrued        numeric(16,2) NOT NULL,
    reversed       numeric(16,2) NOT NULL,
    non_accrual    integer NOT NULL,
    source         text NOT NULL,
    run_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_date, batch)
);

CREATE TABLE provision_runs (
    business_date  date NOT NULL,
    batch          integer NOT NULL DEFAULT 0,
    loans          integer NOT NULL,
    required       numeric(16,2) NOT NULL,
    charged        numeric(16,2) NOT NULL,
    released       numeric(16,2) NOT NULL,
    source         text NOT NULL,
    run_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_date, batch)
);

-- The latest provisioning of each loan (what the allowance should hold, and why).
CREATE TABLE loan_provisions (
    loan_id         text PRIMARY KEY,
    business_date   date NOT NULL,
    days_in_arrears integer NOT NULL,
    restructured    boolean NOT NULL,
    bucket          text NOT NULL,
    rate            numeric(7,6) NOT NULL,
    principal       numeric(16,2) NOT NULL,
    required        numeric(16,2) NOT NULL
);
