-- A night's InterestAccrued batches staged by the consumer and posted by payments' accrual
-- workers, several at once (any replica; a lease as the payout worker's).
--
-- ``accrual_dates``: one row per business date loans published, with how many batches
-- the date has (the event's ``batches``); ``completed_at`` is set once every batch of
-- the date is accrued and provisioned. Only the earliest date not completed is worked
-- on, so dates are posted in forward order (provisions go forward in time; a loan's
-- nights in order whichever batch carries it).
--
-- ``accrual_batches``: one row per (date, batch), its loans as received (a JSON array
-- of [loan_id, interest, days_in_arrears, product_id, office_id, restructured,
-- fees_due], emptied once done). ``status``: staged → accrued (its accruals posted) →
-- done (its provisions posted, which waits for every batch of the date to be accrued).
-- ``lease_until`` keeps other workers off a claimed batch; a worker that dies leaves it
-- to expire. ``attempts`` counts claims, ``last_error`` the last failure (retried with a
-- capped backoff).
CREATE TABLE IF NOT EXISTS accrual_dates (
    business_date  date        PRIMARY KEY,
    batches        integer     NOT NULL CHECK (batches >= 1),
    staged_at      timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz
);
CREATE INDEX IF NOT EXISTS accrual_dates_open ON accrual_dates (business_date)
    WHERE completed_at IS NULL;

CREATE TABLE IF NOT EXISTS accrual_batches (
    id             bigserial   PRIMARY KEY,
    business_date  date        NOT NULL REFERENCES accrual_dates (business_date),
    batch          integer     NOT NULL CHECK (batch >= 0),
    loans          json,
    loan_count     integer     NOT NULL,
    event_id       text        NOT NULL,
    status         text        NOT NULL DEFAULT 'staged'
        CHECK (status IN ('staged', 'accrued', 'done')),
    lease_until    timestamptz NOT NULL DEFAULT '-infinity',
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text,
    staged_at      timestamptz NOT NULL DEFAULT now(),
    accrued_at     timestamptz,
    done_at        timestamptz,
    UNIQUE (business_date, batch)
);
CREATE INDEX IF NOT EXISTS accrual_batches_open ON accrual_batches (business_date, batch)
    WHERE status <> 'done';
