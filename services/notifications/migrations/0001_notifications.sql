-- The notifications service: its projection of clients, templates, messages,
-- their parts at the providers, send attempts, replies and opt-outs.

CREATE TABLE recipients (
    client_id    text PRIMARY KEY,
    partner_id   text,
    phone        text,
    language     text        NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'ar')),
    consent      boolean     NOT NULL DEFAULT false,
    blocked      boolean     NOT NULL DEFAULT false,
    opted_out_at timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recipients_phone ON recipients (phone);

-- Which client a loan belongs to (from loans.events), for refunds and queries.
CREATE TABLE loan_clients (
    loan_id    text PRIMARY KEY,
    client_id  text NOT NULL,
    partner_id text
);

CREATE TABLE templates (
    name       text        NOT NULL,
    language   text        NOT NULL CHECK (language IN ('fr', 'ar')),
    version    integer     NOT NULL CHECK (version > 0),
    body       text        NOT NULL,
    variables  jsonb       NOT NULL DEFAULT '{}',
    urgent     boolean     NOT NULL DEFAULT false,
    policy     text        NOT NULL DEFAULT 'transliterate'
                           CHECK (policy IN ('transliterate', 'keep')),
    created_by text        NOT NULL DEFAULT 'migration',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, language, version)
);

CREATE TABLE messages (
    id               uuid PRIMARY KEY,
    source_event_id  uuid,
    source_type      text,
    template         text        NOT NULL,
    template_version integer     NOT NULL,
    client_id        text,
    partner_id       text,
    loan_id          text,
    phone            text,
    language         text        NOT NULL,
    text             text        NOT NULL,
    encoding         text        NOT NULL CHECK (encoding IN ('GSM-7', 'UCS-2')),
    segments         integer     NOT NULL CHECK (segments > 0),
    urgent           boolean     NOT NULL DEFAULT false,
    status           text        NOT NULL CHECK (status IN
                         ('queued', 'submitted', 'delivered', 'failed', 'expired', 'suppressed')),
    permanent        boolean,
    reason           text,
    provider         text,
    attempts         integer     NOT NULL DEFAULT 0,
    not_before       timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    claimed_until    timestamptz,
    resend_of        uuid REFERENCES messages (id),
    requested_by     text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    submitted_at     timestamptz,
    finished_at      timestamptz,
    -- One SMS per triggering event and template, whatever is redelivered or replayed.
    UNIQUE (source_event_id, template)
);
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE status = 'queued';
CREATE INDEX messages_client ON messages (client_id, created_at);
CREATE INDEX messages_loan ON messages (loan_id, created_at);
CREATE INDEX messages_phone ON messages (phone, created_at);

-- Each part a provider accepted, with the id its receipts will carry.
CREATE TABLE message_parts (
    provider            text    NOT NULL,
    provider_message_id text    NOT NULL,
    message_id          uuid    NOT NULL REFERENCES messages (id),
    attempt             integer NOT NULL,
    part                integer NOT NULL,
    status              text    NOT NULL DEFAULT 'submitted',
    receipt             text,
    PRIMARY KEY (provider, provider_message_id)
);
CREATE INDEX message_parts_message ON message_parts (message_id, attempt);

CREATE TABLE attempts (
    id          bigserial PRIMARY KEY,
    message_id  uuid        NOT NULL REFERENCES messages (id),
    attempt     integer     NOT NULL,
    provider    text        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN
                    ('submitted', 'throttled', 'temporary', 'permanent')),
    detail      text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attempts_message ON attempts (message_id, id);

-- Replies (mobile-originated messages) and opt-outs, kept for the record.
CREATE TABLE replies (
    id          bigserial PRIMARY KEY,
    provider    text        NOT NULL,
    phone       text        NOT NULL,
    text        text        NOT NULL,
    is_stop     boolean     NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE opt_outs (
    id         bigserial PRIMARY KEY,
    phone      text        NOT NULL,
    client_id  text,
    source     text        NOT NULL CHECK (source IN ('sms_stop', 'api')),
    requested_by text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Delivery receipts as they arrive (a receipt can overtake the record of its
-- submission); applied to message_parts as soon as the part is known.
CREATE TABLE receipts (
    id                  bigserial PRIMARY KEY,
    provider            text        NOT NULL,
    provider_message_id text        NOT NULL,
    stat                text        NOT NULL,
    error               text,
    received_at         timestamptz NOT NULL DEFAULT now(),
    applied_at          timestamptz
);
CREATE INDEX receipts_pending ON receipts (provider, provider_message_id) WHERE applied_at IS NULL;
