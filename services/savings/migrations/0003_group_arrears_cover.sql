-- Issue 16: a group's compulsory savings cover a member's arrears (maker-checker).
--
-- What savings knows of loans, from loans.events only (services never read each
-- other's tables): the members of each live group loan (GroupLoanActive, ended by
-- GroupLoanClosed) and each loan's overdue installments (InstallmentOverdue sets what
-- an installment still owes; RepaymentApplied lowers it; LoanArrearsCured, LoanClosed
-- and LoanWrittenOff clear the loan).

CREATE TABLE group_loan_members (
    group_loan_id text    NOT NULL,
    group_id      text    NOT NULL,
    client_id     text    NOT NULL,
    loan_id       text    NOT NULL,
    position      integer NOT NULL,
    -- the group's rule "the group's money covers a member in arrears", when loans tells
    -- it on GroupLoanActive; NULL (not told) covers from the member's own savings only
    cover_arrears boolean,
    live          boolean NOT NULL DEFAULT true,
    PRIMARY KEY (group_loan_id, loan_id)
);
CREATE INDEX group_loan_members_group ON group_loan_members (group_id) WHERE live;
CREATE INDEX group_loan_members_loan ON group_loan_members (loan_id);

CREATE TABLE loan_overdue (
    loan_id     text          NOT NULL,
    installment integer       NOT NULL,
    due_date    date          NOT NULL,
    owed        numeric(14,2) NOT NULL CHECK (owed >= 0),
    as_of       date          NOT NULL,
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (loan_id, installment)
);

-- A maker's request that compulsory savings pay a member's overdue installments; a
-- second operator approves (the money moves then) or rejects it.
CREATE TABLE arrears_cover_requests (
    id            text          PRIMARY KEY,
    group_id      text          NOT NULL,
    group_loan_id text          NOT NULL,
    loan_id       text          NOT NULL,
    client_id     text          NOT NULL,
    partner_id    text          NOT NULL,
    office_id     text,
    office_path   text,
    amount        numeric(14,2) NOT NULL CHECK (amount > 0),
    installments  jsonb         NOT NULL,
    sources       jsonb         NOT NULL,
    other_members_allowed boolean NOT NULL,
    status        text          NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_by  text          NOT NULL,
    decided_by    text,
    reason        text,
    paid          numeric(14,2),
    created_at    timestamptz   NOT NULL DEFAULT now(),
    decided_at    timestamptz
);
-- one request waiting per member's loan
CREATE UNIQUE INDEX arrears_cover_requests_pending ON arrears_cover_requests (loan_id)
    WHERE status = 'pending';
CREATE INDEX arrears_cover_requests_group ON arrears_cover_requests (group_id, created_at);
CREATE INDEX arrears_cover_requests_status ON arrears_cover_requests (status, created_at);
CREATE INDEX accounts_compulsory_client ON accounts (client_id) WHERE kind = 'compulsory';
