-- Manual journal entries (maker-checker) and closed accounting periods.

CREATE TABLE closed_periods (
    period     text PRIMARY KEY CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    starts_on  date NOT NULL,
    ends_on    date NOT NULL CHECK (ends_on >= starts_on),
    closed_by  text NOT NULL,
    closed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX closed_periods_range ON closed_periods (starts_on, ends_on);

-- No entry dated in a closed period, whoever writes it: the code checks first,
-- PostgreSQL refuses anyway.
CREATE FUNCTION ledger_period_open() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    closed text;
BEGIN
    SELECT period INTO closed FROM closed_periods
     WHERE NEW.business_date BETWEEN starts_on AND ends_on;
    IF closed IS NOT NULL THEN
        RAISE EXCEPTION 'period % is closed: entry % dated % cannot be posted; post the '
            'correction in the open period', closed, NEW.transfer_id, NEW.business_date
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER journal_entries_period_open BEFORE INSERT ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_period_open();

CREATE TABLE year_end_closes (
    year          integer PRIMARY KEY,
    transfer_id   text NOT NULL,
    net_income    numeric(16,2) NOT NULL,
    closed_by     text NOT NULL,
    closed_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE manual_journals (
    id            uuid PRIMARY KEY,
    business_date date NOT NULL,
    reason        text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    attachments   jsonb NOT NULL DEFAULT '[]',
    lines         jsonb NOT NULL,
    office_id     text,
    amount        numeric(16,2) NOT NULL CHECK (amount > 0),
    status        text NOT NULL DEFAULT 'proposed'
                  CHECK (status IN ('proposed', 'approved', 'rejected')),
    proposed_by   text NOT NULL,
    proposed_at   timestamptz NOT NULL DEFAULT now(),
    decided_by    text,
    decided_at    timestamptz,
    decision_note text,
    transfer_id   text,
    CHECK (decided_by IS NULL OR decided_by <> proposed_by)
);
CREATE INDEX manual_journals_status ON manual_journals (status, proposed_at);
