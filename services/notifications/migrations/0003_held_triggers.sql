-- Trigger events about a client the projection has not seen yet. The topics are
-- consumed independently, so a LoanDisbursed can be applied before the client's
-- ClientRegistered; the trigger waits here (no message row: the UNIQUE
-- (source_event_id, template) would block the real one) and is released, as if
-- it had just arrived, when ClientRegistered is applied.
CREATE TABLE held_triggers (
    source_event_id uuid        PRIMARY KEY,
    client_id       text        NOT NULL,
    loan_id         text,
    source_type     text        NOT NULL,
    envelope        jsonb       NOT NULL,  -- the whole source envelope
    held_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX held_triggers_client ON held_triggers (client_id, held_at);
