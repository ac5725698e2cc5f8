-- The institution's business date (one row), advanced by close of business: the date
-- being worked, i.e. the day after the last date closed.
CREATE TABLE IF NOT EXISTS business_date (
    id            boolean     PRIMARY KEY DEFAULT true CHECK (id),
    business_date date        NOT NULL,
    last_closed   date,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Working weekdays (0 = Monday … 6 = Sunday) and dated holidays: the calendar due dates
-- are moved off. Islamic holidays are seeded at their expected dates, provisional until
-- an operator confirms them.
CREATE TABLE IF NOT EXISTS working_days (
    weekday  integer PRIMARY KEY CHECK (weekday BETWEEN 0 AND 6),
    working  boolean NOT NULL
);
INSERT INTO working_days (weekday, working)
SELECT d, d < 5 FROM generate_series(0, 6) AS d ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS holidays (
    day          date        PRIMARY KEY,
    name         text        NOT NULL,
    provisional  boolean     NOT NULL DEFAULT false,
    updated_by   text        NOT NULL DEFAULT 'seed',
    updated_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO holidays (day, name, provisional)
SELECT make_date(y, m, d), name, false
  FROM generate_series(2026, 2030) AS y,
       (VALUES (1, 1, 'Nouvel an'), (1, 11, 'Manifeste de l''indépendance'),
               (1, 14, 'Yennayer (Nouvel an amazigh)'), (5, 1, 'Fête du travail'),
               (7, 30, 'Fête du Trône'), (8, 14, 'Allégeance Oued Ed-Dahab'),
               (8, 20, 'Révolution du Roi et du Peuple'), (8, 21, 'Fête de la jeunesse'),
               (11, 6, 'Marche Verte'), (11, 18, 'Fête de l''indépendance')) AS f(m, d, name)
ON CONFLICT DO NOTHING;
INSERT INTO holidays (day, name, provisional) VALUES
    ('2026-03-20', 'Aïd al-Fitr', true),
    ('2026-05-27', 'Aïd al-Adha', true),
    ('2026-05-28', 'Aïd al-Adha (2e jour)', true),
    ('2026-06-16', 'Nouvel an de l''Hégire 1448', true),
    ('2026-08-25', 'Aïd al-Mawlid', true),
    ('2026-08-26', 'Aïd al-Mawlid (2e jour)', true),
    ('2027-03-10', 'Aïd al-Fitr', true),
    ('2027-05-17', 'Aïd al-Adha', true),
    ('2027-05-18', 'Aïd al-Adha (2e jour)', true),
    ('2027-06-06', 'Nouvel an de l''Hégire 1449', true),
    ('2027-08-15', 'Aïd al-Mawlid', true),
    ('2027-08-16', 'Aïd al-Mawlid (2e jour)', true)
ON CONFLICT DO NOTHING;

-- Every change to the calendar: who, when, what it was and what it became.
CREATE TABLE IF NOT EXISTS calendar_audit (
    id       bigserial   PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    by_sub   text        NOT NULL,
    action   text        NOT NULL,
    subject  text        NOT NULL,
    before   jsonb,
    after    jsonb
);

-- Schedule versions: the loan's installments as they were before each rebuild
-- (prepayment, rescheduling), so the history is kept; the live schedule is in
-- installments.
ALTER TABLE loans
    ADD COLUMN IF NOT EXISTS schedule_version        integer NOT NULL DEFAULT 1,
    ADD COLUMN IF NOT EXISTS restructured            boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS restructured_on         date,
    ADD COLUMN IF NOT EXISTS restructure_from_number integer,
    ADD COLUMN IF NOT EXISTS restructure_cure_count  integer,
    ADD COLUMN IF NOT EXISTS teg                     numeric(12,6),
    ADD COLUMN IF NOT EXISTS total_cost_of_credit    numeric(14,2);

CREATE TABLE IF NOT EXISTS schedule_versions (
    loan_id       text        NOT NULL REFERENCES loans (id),
    version       integer     NOT NULL,
    reason        text        NOT NULL,
    replaced_by   integer     NOT NULL,
    created_by    text        NOT NULL,
    business_date date        NOT NULL,
    installments  jsonb       NOT NULL,
    detail        jsonb       NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (loan_id, version)
);

-- Rescheduling/restructuring requests (one loan, or a bulk moratorium over many):
-- maker-checker, the preview kept as shown.
CREATE TABLE IF NOT EXISTS reschedule_requests (
    id            text        PRIMARY KEY,
    kind          text        NOT NULL,          -- loan | bulk
    loan_id       text,
    loan_version  integer,
    params        jsonb       NOT NULL,
    preview       jsonb       NOT NULL DEFAULT '{}',
    status        text        NOT NULL DEFAULT 'pending',   -- pending | approved | rejected
    requested_by  text        NOT NULL,
    decided_by    text,
    decided_at    timestamptz,
    result        jsonb       NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS reschedule_requests_loan ON reschedule_requests (loan_id, created_at);
CREATE INDEX IF NOT EXISTS loans_restructured ON loans (id) WHERE restructured;
