-- Credit policy that reads behaviour: each loan's arrears as loans reports them, holds
-- set by a written-off loan and lifted by maker-checker, and each closed cycle's decision.

-- One row per loan clients heard about from LoanInArrears / LoanArrearsCured /
-- LoanClosed / LoanWrittenOff. as_of (business date) and as_of_at (when loans published
-- it) order the arrears facts, so a replayed older event never undoes a newer one; a
-- loan that ended (closed, written off) takes no arrears fact any more.
CREATE TABLE loan_behaviour (
    loan_id         text        PRIMARY KEY,
    client_id       text        NOT NULL REFERENCES clients (id),
    in_arrears      boolean     NOT NULL DEFAULT false,
    days_in_arrears integer     NOT NULL DEFAULT 0 CHECK (days_in_arrears >= 0),
    worst_days      integer     NOT NULL DEFAULT 0 CHECK (worst_days >= 0),
    bucket          text,
    amount_overdue  numeric(14,2),
    as_of           date,
    as_of_at        timestamptz,
    ended           text        CHECK (ended IN ('closed', 'written_off')),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX loan_behaviour_in_arrears ON loan_behaviour (client_id)
    WHERE in_arrears AND ended IS NULL;

-- A written-off loan holds the client's credit until two operators lift it. One hold per
-- loan: a redelivered or replayed LoanWrittenOff never places a lifted hold again.
CREATE TABLE credit_holds (
    loan_id       text        PRIMARY KEY,
    client_id     text        NOT NULL REFERENCES clients (id),
    reason        text        NOT NULL CHECK (reason IN ('written_off_loan')),
    status        text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'lifted')),
    written_off_by text,
    placed_at     timestamptz NOT NULL DEFAULT now(),
    lift_id       text,
    lifted_at     timestamptz
);
CREATE INDEX credit_holds_active ON credit_holds (client_id) WHERE status = 'active';

-- Lifting the holds: one operator proposes (reason), another approves. The request lifts
-- the holds that were active when it was proposed.
CREATE TABLE credit_hold_lifts (
    id            text        PRIMARY KEY,
    client_id     text        NOT NULL REFERENCES clients (id),
    status        text        NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'approved')),
    loan_ids      text[]      NOT NULL,
    reason        text        NOT NULL,
    requested_by  text        NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    approved_by   text,
    approved_at   timestamptz
);
CREATE UNIQUE INDEX credit_hold_lifts_one_pending ON credit_hold_lifts (client_id)
    WHERE status = 'pending';

-- What each closed loan did to the limit: grow, keep or shrink by its worst days in
-- arrears. Once per loan.
CREATE TABLE credit_cycles (
    loan_id          text          PRIMARY KEY,
    client_id        text          NOT NULL REFERENCES clients (id),
    closed_on        date          NOT NULL,
    worst_days       integer       NOT NULL CHECK (worst_days >= 0),
    move             text          NOT NULL CHECK (move IN ('grow', 'keep', 'shrink')),
    previous_limit   numeric(14,2) NOT NULL,
    credit_limit     numeric(14,2) NOT NULL,
    previous_cycle   integer       NOT NULL,
    cycle            integer       NOT NULL,
    decided_at       timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX credit_cycles_client ON credit_cycles (client_id, decided_at DESC);
