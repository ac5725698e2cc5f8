-- Partners and wallet integrations with credentials: each has one confidential OAuth2
-- client in the identity provider (client_id, keycloak_id), its allowed scopes, and a
-- status. Its secret is never stored: it is returned once, on creation and rotation.
CREATE TABLE partners (
    partner_id        text        PRIMARY KEY CHECK (partner_id ~ '^[a-z0-9][a-z0-9-]{1,39}$'),
    kind              text        NOT NULL CHECK (kind IN ('partner', 'wallet')),
    name              text        NOT NULL,
    client_id         text        NOT NULL UNIQUE,
    keycloak_id       text,
    scopes            text[]      NOT NULL,
    status            text        NOT NULL DEFAULT 'active'
                                  CHECK (status IN ('active', 'disabled')),
    created_by        text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    secret_rotated_at timestamptz NOT NULL DEFAULT now(),
    disabled_by       text,
    disabled_at       timestamptz,
    version           integer     NOT NULL DEFAULT 1
);
CREATE INDEX partners_created ON partners (created_at, partner_id);
