-- Joint liability (issue 15), from loans.events: a group with a live group loan cannot be
-- dissolved; while one of its members is in arrears, no member gets new credit.
ALTER TABLE groups
    ADD COLUMN IF NOT EXISTS live_group_loan_id text,
    ADD COLUMN IF NOT EXISTS in_arrears boolean NOT NULL DEFAULT false;
