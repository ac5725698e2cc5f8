-- A repayment held for review (its short reference failed its check character) that
-- payments' operators then matched to a loan: RepaymentReceived comes again under the same
-- payment id. Its 'held' row leaves repayments (the payment is then applied, or refused,
-- like any other) and is kept here: what was typed, when it was held, what it matched.
CREATE TABLE IF NOT EXISTS held_repayments_matched (
    payment_id   text          PRIMARY KEY,
    reference    text          NOT NULL,   -- as the payer typed it
    amount       numeric(14,2) NOT NULL,
    reason       text,
    received_at  timestamptz   NOT NULL,
    held_at      timestamptz   NOT NULL,
    matched_to   text          NOT NULL,   -- the reference payments named the second time
    matched_at   timestamptz   NOT NULL DEFAULT now()
);
