-- The organisation: offices (head office → region → branch → mobile unit) with a
-- materialised path of stable ids, the staff attached to them, the office and loan
-- officer of every client and group, and the maker-checker requests that move them.
--
-- Existing clients and groups go to the head office (seeded here) with no officer.

CREATE TABLE offices (
    id         text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    kind       text        NOT NULL
                           CHECK (kind IN ('head_office', 'region', 'branch', 'mobile_unit')),
    name       text        NOT NULL,
    parent_id  text        REFERENCES offices (id),
    path       text        NOT NULL UNIQUE,
    status     text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    opened_by  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    version    integer     NOT NULL DEFAULT 1,
    CHECK ((kind = 'head_office') = (parent_id IS NULL))
);
CREATE UNIQUE INDEX offices_one_head_office ON offices ((true)) WHERE kind = 'head_office';
CREATE INDEX offices_path ON offices (path text_pattern_ops);
CREATE INDEX offices_parent ON offices (parent_id);

INSERT INTO offices (id, kind, name, parent_id, path, opened_by)
VALUES ('ho', 'head_office', 'Head office', NULL, 'ho', 'migration');

CREATE TABLE staff (
    id          text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    full_name   text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('loan_officer', 'branch_manager')),
    office_id   text        NOT NULL REFERENCES offices (id),
    office_path text        NOT NULL,
    active      boolean     NOT NULL DEFAULT true,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     integer     NOT NULL DEFAULT 1
);
CREATE INDEX staff_office_path ON staff (office_path text_pattern_ops, id);

-- A constant default adds the columns without rewriting the table.
ALTER TABLE clients
    ADD COLUMN office_id   text NOT NULL DEFAULT 'ho' REFERENCES offices (id),
    ADD COLUMN office_path text NOT NULL DEFAULT 'ho',
    ADD COLUMN officer_id  text REFERENCES staff (id);
CREATE INDEX clients_office_created ON clients (office_path text_pattern_ops, created_at DESC,
                                                id DESC);
CREATE INDEX clients_officer ON clients (officer_id) WHERE officer_id IS NOT NULL;

ALTER TABLE groups
    ADD COLUMN office_id   text NOT NULL DEFAULT 'ho' REFERENCES offices (id),
    ADD COLUMN office_path text NOT NULL DEFAULT 'ho',
    ADD COLUMN officer_id  text REFERENCES staff (id);
CREATE INDEX groups_office ON groups (office_path text_pattern_ops);
CREATE INDEX groups_officer ON groups (officer_id) WHERE officer_id IS NOT NULL;

-- Transfers (a client to another office and/or officer) and reassignments (every
-- client and group of one officer to another), proposed by one operator and decided
-- by another.
CREATE TABLE org_requests (
    id               text        PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('transfer', 'reassignment')),
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'approved', 'rejected')),
    client_id        text        REFERENCES clients (id),
    from_office_id   text        NOT NULL REFERENCES offices (id),
    from_office_path text        NOT NULL,
    to_office_id     text        NOT NULL REFERENCES offices (id),
    to_office_path   text        NOT NULL,
    from_officer_id  text        REFERENCES staff (id),
    to_officer_id    text        REFERENCES staff (id),
    reason           text        NOT NULL,
    requested_by     text        NOT NULL,
    requested_at     timestamptz NOT NULL DEFAULT now(),
    decided_by       text,
    decided_at       timestamptz,
    decision_reason  text,
    moved_clients    integer     NOT NULL DEFAULT 0,
    moved_groups     integer     NOT NULL DEFAULT 0,
    CHECK ((kind = 'transfer') = (client_id IS NOT NULL)),
    CHECK (kind = 'transfer' OR (from_officer_id IS NOT NULL AND to_officer_id IS NOT NULL)),
    CHECK ((status = 'pending') = (decided_by IS NULL))
);
-- The approvals queue, oldest first.
CREATE INDEX org_requests_pending ON org_requests (kind, requested_at, id)
    WHERE status = 'pending';
-- One open request per client, and per officer's portfolio.
CREATE UNIQUE INDEX org_requests_one_transfer ON org_requests (client_id)
    WHERE status = 'pending' AND kind = 'transfer';
CREATE UNIQUE INDEX org_requests_one_reassignment ON org_requests (from_officer_id)
    WHERE status = 'pending' AND kind = 'reassignment';
