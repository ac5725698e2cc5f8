-- Clients, their KYC and block state, credit accounts, reservations, groups.

CREATE TABLE clients (
    id                  text        PRIMARY KEY,
    partner_id          text        NOT NULL,
    full_name           text        NOT NULL,
    national_id         text        NOT NULL,
    phone               text        NOT NULL,
    date_of_birth       date        NOT NULL,
    language            text        NOT NULL CHECK (language IN ('fr', 'ar')),
    sms_consent         boolean     NOT NULL,
    region              text,
    address             text,
    onboarded_by        text        NOT NULL,
    kyc_status          text        NOT NULL DEFAULT 'pending'
                                    CHECK (kyc_status IN ('pending', 'verified', 'rejected')),
    kyc_reason          text,
    kyc_decided_by      text,
    kyc_decided_at      timestamptz,
    blocked             boolean     NOT NULL DEFAULT false,
    block_reason        text,
    blocked_by          text,
    blocked_by_operator boolean     NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer     NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX clients_national_id ON clients (national_id);
CREATE UNIQUE INDEX clients_phone ON clients (phone);
CREATE INDEX clients_partner_created ON clients (partner_id, created_at DESC, id DESC);
CREATE INDEX clients_created ON clients (created_at DESC, id DESC);
CREATE INDEX clients_name ON clients (lower(full_name) text_pattern_ops);

-- One row per client: the row lock serialises every change to its exposure.
CREATE TABLE credit_accounts (
    client_id    text          PRIMARY KEY REFERENCES clients (id),
    credit_limit numeric(14,2) NOT NULL CHECK (credit_limit > 0),
    cycle        integer       NOT NULL DEFAULT 1 CHECK (cycle >= 1),
    reserved     numeric(14,2) NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    outstanding  numeric(14,2) NOT NULL DEFAULT 0 CHECK (outstanding >= 0),
    updated_at   timestamptz   NOT NULL DEFAULT now(),
    CHECK (reserved + outstanding <= credit_limit OR reserved = 0)
);

-- One row per ReserveCredit (idempotency on reservation_id), and the loan it became.
CREATE TABLE reservations (
    reservation_id text          PRIMARY KEY,
    client_id      text          NOT NULL,
    saga_id        text          NOT NULL,
    loan_id        text          NOT NULL,
    amount         numeric(14,2) NOT NULL,
    status         text          NOT NULL CHECK (status IN (
                       'reserved', 'rejected', 'released', 'outstanding', 'closed',
                       'written_off')),
    reject_reason  text,
    reject_detail  text,
    outstanding    numeric(14,2) NOT NULL DEFAULT 0,
    created_at     timestamptz   NOT NULL DEFAULT now(),
    updated_at     timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX reservations_loan ON reservations (loan_id, created_at DESC);
CREATE INDEX reservations_client ON reservations (client_id);

CREATE TABLE groups (
    id          text        PRIMARY KEY,
    partner_id  text        NOT NULL,
    name        text        NOT NULL,
    leader_id   text        NOT NULL REFERENCES clients (id),
    status      text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'dissolved')),
    formed_by   text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    dissolved_at timestamptz
);

CREATE TABLE group_members (
    group_id  text    NOT NULL REFERENCES groups (id),
    client_id text    NOT NULL REFERENCES clients (id),
    active    boolean NOT NULL DEFAULT true,
    PRIMARY KEY (group_id, client_id)
);
-- A client is in at most one active group.
CREATE UNIQUE INDEX group_members_one_active ON group_members (client_id) WHERE active;
