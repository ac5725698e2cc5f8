-- Platform tables every service schema has: transactional outbox, inbox,
-- idempotency records and dead letters. Applied into the service's own schema.

CREATE TABLE IF NOT EXISTS outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    topic         text        NOT NULL,
    message_key   text        NOT NULL,
    type          text        NOT NULL,
    envelope      jsonb       NOT NULL,
    traceparent   text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    claim_token   uuid,
    attempts      integer     NOT NULL DEFAULT 0,
    published_at  timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_pending_key ON outbox (topic, message_key, id)
    WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_published ON outbox (published_at)
    WHERE published_at IS NOT NULL;

-- A statement-level wake-up for the relay. Only a hint: the relay polls anyway.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(current_schema() || '_outbox', '');
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

CREATE TABLE IF NOT EXISTS inbox (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    topic         text,
    kafka_partition integer,
    kafka_offset  bigint,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope           text        NOT NULL,
    key             text        NOT NULL,
    request_hash    text        NOT NULL,
    response_status integer,
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    PRIMARY KEY (scope, key)
);

CREATE TABLE IF NOT EXISTS dead_letters (
    id              bigserial   PRIMARY KEY,
    consumer        text        NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    message_key     text,
    message_type    text,
    value           bytea       NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '[]',
    reason          text        NOT NULL,
    error           text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    replayed_at     timestamptz,
    replay_count    integer     NOT NULL DEFAULT 0,
    UNIQUE (consumer, topic, kafka_partition, kafka_offset)
);

CREATE TABLE IF NOT EXISTS dead_letter_replays (
    id             bigserial   PRIMARY KEY,
    dead_letter_id bigint      NOT NULL REFERENCES dead_letters (id),
    replayed_by    text        NOT NULL,
    outcome        text        NOT NULL,
    detail         text,
    replayed_at    timestamptz NOT NULL DEFAULT now()
);
