-- Late charges, write-offs and waivers by maker-checker, recoveries, short references,
-- loan purposes, reminders and the accrual feed.

ALTER TABLE loans
    ADD COLUMN IF NOT EXISTS reference           text,
    ADD COLUMN IF NOT EXISTS purpose             text,
    ADD COLUMN IF NOT EXISTS recovered_amount    numeric(14,2) NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS max_days_in_arrears integer       NOT NULL DEFAULT 0,
    -- a LoanInArrears was published and no LoanArrearsCured since
    ADD COLUMN IF NOT EXISTS arrears_reported    boolean       NOT NULL DEFAULT false;
CREATE UNIQUE INDEX IF NOT EXISTS loans_reference ON loans (reference);
CREATE INDEX IF NOT EXISTS loans_arrears_reported ON loans (id) WHERE arrears_reported;

-- One row per installment and business date a late charge was charged on: a re-run or a
-- catch-up of the date charges nothing twice.
CREATE TABLE IF NOT EXISTS late_charges (
    loan_id     text          NOT NULL,
    number      integer       NOT NULL,
    charged_on  date          NOT NULL,
    amount      numeric(14,2) NOT NULL CHECK (amount > 0),
    PRIMARY KEY (loan_id, number, charged_on),
    FOREIGN KEY (loan_id, number) REFERENCES installments (loan_id, number)
);

-- Maker-checker requests on a loan: a write-off, a waiver of late charges.
-- status: pending | approved | rejected
CREATE TABLE IF NOT EXISTS loan_requests (
    id           text          PRIMARY KEY,
    loan_id      text          NOT NULL REFERENCES loans (id),
    kind         text          NOT NULL CHECK (kind IN ('write_off', 'waiver')),
    status       text          NOT NULL DEFAULT 'pending',
    amount       numeric(14,2),
    reason       text          NOT NULL,
    proposed_by  text          NOT NULL,
    proposed_at  timestamptz   NOT NULL DEFAULT now(),
    decided_by   text,
    decided_at   timestamptz,
    detail       jsonb         NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS loan_requests_one_pending
    ON loan_requests (loan_id, kind) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS loan_requests_status ON loan_requests (status, proposed_at);

-- Reminders sent: one per installment, kind and business date.
CREATE TABLE IF NOT EXISTS reminders_sent (
    loan_id        text    NOT NULL,
    number         integer NOT NULL,
    kind           text    NOT NULL,   -- due_soon | due_today | overdue
    business_date  date    NOT NULL,
    PRIMARY KEY (loan_id, number, kind, business_date)
);

-- InterestAccrued published for a business date (once).
CREATE TABLE IF NOT EXISTS accruals_published (
    business_date  date        PRIMARY KEY,
    loans          integer     NOT NULL,
    batches        integer     NOT NULL,
    published_at   timestamptz NOT NULL DEFAULT now()
);
