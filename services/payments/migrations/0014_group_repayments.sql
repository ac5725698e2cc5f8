-- Group loans in payments: a collection for a group loan split by loans over its members
-- (GroupRepaymentSplit), each share booked out of suspense by its member's own
-- RepaymentApplied.

-- One row per group payment split by loans (the group payment is a `payments` row).
CREATE TABLE group_repayments (
    payment_id     uuid          PRIMARY KEY REFERENCES payments (id),
    group_loan_id  text          NOT NULL,
    group_id       text          NOT NULL,
    amount         numeric(14,2) NOT NULL CHECK (amount >= 0),
    unallocated    numeric(14,2) NOT NULL CHECK (unallocated >= 0),
    split_at       timestamptz   NOT NULL DEFAULT now()
);

-- Each member's share, under the payment id loans derived for it (its RepaymentApplied).
CREATE TABLE group_repayment_shares (
    member_payment_id  uuid          PRIMARY KEY,
    payment_id         uuid          NOT NULL REFERENCES group_repayments (payment_id),
    loan_id            text          NOT NULL,
    client_id          text          NOT NULL DEFAULT '',
    amount             numeric(14,2) NOT NULL CHECK (amount >= 0),
    status             text          NOT NULL DEFAULT 'expected'
        CHECK (status IN ('expected', 'posted', 'rejected')),
    booked             numeric(14,2) CHECK (booked >= 0),
    not_applied        numeric(14,2) NOT NULL DEFAULT 0 CHECK (not_applied >= 0),
    journal_id         uuid,
    answered_at        timestamptz
);
CREATE INDEX group_repayment_shares_payment ON group_repayment_shares (payment_id);

-- A member's answer (RepaymentApplied/RepaymentRejected) that arrived before its group's
-- split (another partition): kept until the split names it, then booked.
CREATE TABLE group_share_answers_waiting (
    member_payment_id  uuid        PRIMARY KEY,
    type               text        NOT NULL,
    payload            jsonb       NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
);
