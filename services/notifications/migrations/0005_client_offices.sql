-- The office (id and materialised path of ids, ho/r-souss/b-agadir) and loan officer
-- of each client, from ClientRegistered, ClientTransferred and LoanOfficerReassigned:
-- messages are filtered and office-scoped tokens are limited by the client's current
-- office. NULL for a client registered without one.
ALTER TABLE recipients
    ADD COLUMN office_id   text,
    ADD COLUMN office_path text,
    ADD COLUMN officer_id  text;
CREATE INDEX recipients_office_path ON recipients (office_path text_pattern_ops);
