-- Who did what: one row per write request a token made (its subject and OAuth2 client),
-- written in the same transaction as the write when the write commits a unit of work
-- (shared.uow), otherwise right after a successful answer (shared.audit). Kept: an
-- audit trail is not pruned by the retention job.
CREATE TABLE IF NOT EXISTS audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    subject        text NOT NULL,
    client_id      text,
    partner_id     text,
    username       text,
    method         text NOT NULL,
    route          text NOT NULL,
    path           text NOT NULL,
    status         integer,
    correlation_id text,
    in_transaction boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log (subject, id);
CREATE INDEX IF NOT EXISTS audit_log_client ON audit_log (client_id, id);
