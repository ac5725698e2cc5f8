-- Offices in the ledger: a projection of clients.events (the office tree and each
-- client's office), so a journal line gets its office even when the loan's own events
-- do not carry it, and statements take an office's whole subtree.

-- office -> materialised path of stable ids (ho/r-souss/b-agadir), from OfficeOpened /
-- OfficeChanged, and learnt from the paths clients' events carry.
CREATE TABLE offices (
    office_id   text PRIMARY KEY CHECK (length(office_id) BETWEEN 1 AND 100),
    path        text NOT NULL CHECK (length(path) BETWEEN 1 AND 1000),
    name        text,
    office_kind text,
    status      text NOT NULL DEFAULT 'open',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX offices_path ON offices (path text_pattern_ops);

-- client -> its office now (ClientRegistered, then each ClientTransferred).
CREATE TABLE client_offices (
    client_id   text PRIMARY KEY,
    office_id   text NOT NULL,
    office_path text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- loan -> client (LoanSubmitted), so a loan's lines find the client's office.
ALTER TABLE loan_dimensions ADD COLUMN client_id text;
CREATE INDEX loan_dimensions_client ON loan_dimensions (client_id);
CREATE INDEX journal_lines_office ON journal_lines (office_id, gl_code);

-- A line's office: the writer's, else the entry's, else the loan's (loans' events), else
-- its client's office (clients' events).
CREATE OR REPLACE FUNCTION ledger_line_dimensions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    e_loan text;
    e_office text;
    d_office text;
    d_client text;
    product text;
BEGIN
    IF NEW.gl_code IS NOT NULL AND NEW.office_id IS NOT NULL THEN
        RETURN NEW;
    END IF;
    SELECT je.loan_id, je.office_id INTO e_loan, e_office
      FROM journal_entries je WHERE je.id = NEW.entry_id;
    SELECT d.product_id, d.office_id, d.client_id INTO product, d_office, d_client
      FROM loan_dimensions d WHERE d.loan_id = e_loan;
    IF NEW.office_id IS NULL THEN
        NEW.office_id := coalesce(e_office, d_office);
        IF NEW.office_id IS NULL AND d_client IS NOT NULL THEN
            SELECT c.office_id INTO NEW.office_id FROM client_offices c
             WHERE c.client_id = d_client;
        END IF;
    END IF;
    IF NEW.gl_code IS NULL THEN
        IF NEW.account_id LIKE 'gl:%' THEN
            NEW.gl_code := substr(NEW.account_id, 4);
        ELSE
            SELECT r.gl_code INTO NEW.gl_code
              FROM accounts a JOIN accounting_rules r ON r.kind = a.kind
             WHERE a.id = NEW.account_id AND r.product_id IN ('*', coalesce(product, '*'))
             ORDER BY (r.product_id = '*') LIMIT 1;
        END IF;
        IF NEW.gl_code IS NULL THEN
            NEW.gl_code := '3499';
        END IF;
    END IF;
    RETURN NEW;
END $$;
