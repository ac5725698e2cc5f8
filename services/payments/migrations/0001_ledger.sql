-- The double-entry ledger. Balances are maintained by a trigger on the lines, so
-- an account's balance is always the sum of its lines; entries must balance
-- (checked at commit by a deferred constraint trigger); lines and entries are
-- immutable (corrections are reversal entries).

CREATE TABLE accounts (
    id           text PRIMARY KEY,
    kind         text        NOT NULL,
    name         text        NOT NULL,
    normal_side  text        NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    non_negative boolean     NOT NULL,
    currency     text        NOT NULL DEFAULT 'MAD',
    debits       numeric(16,2) NOT NULL DEFAULT 0,
    credits      numeric(16,2) NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT account_not_negative CHECK (
        NOT non_negative OR
        (CASE normal_side WHEN 'debit' THEN debits - credits ELSE credits - debits END) >= 0)
);
CREATE INDEX accounts_kind ON accounts (kind);

CREATE TABLE journal_entries (
    id            uuid        PRIMARY KEY,
    transfer_id   text        NOT NULL UNIQUE,
    request_hash  text        NOT NULL,
    kind          text        NOT NULL,
    loan_id       text,
    provider      text,
    reverses      uuid        UNIQUE REFERENCES journal_entries (id),
    memo          text        NOT NULL DEFAULT '',
    amount        numeric(14,2) NOT NULL CHECK (amount > 0),
    business_date date        NOT NULL DEFAULT current_date,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_entries_loan ON journal_entries (loan_id);

CREATE TABLE journal_lines (
    id         bigserial   PRIMARY KEY,
    entry_id   uuid        NOT NULL REFERENCES journal_entries (id),
    account_id text        NOT NULL REFERENCES accounts (id),
    side       text        NOT NULL CHECK (side IN ('debit', 'credit')),
    amount     numeric(14,2) NOT NULL CHECK (amount > 0)
);
CREATE INDEX journal_lines_account ON journal_lines (account_id, id);
CREATE INDEX journal_lines_entry ON journal_lines (entry_id);

-- Immutability: no UPDATE or DELETE of posted entries or lines.
CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable: post a reversal instead (% on %)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
CREATE TRIGGER journal_lines_immutable BEFORE UPDATE OR DELETE ON journal_lines
    FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
CREATE TRIGGER journal_lines_no_truncate BEFORE TRUNCATE ON journal_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_immutable();

-- Each line moves its account's running totals (the CHECK above refuses a
-- constrained account going negative).
CREATE FUNCTION ledger_apply_line() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.side = 'debit' THEN
        UPDATE accounts SET debits = debits + NEW.amount WHERE id = NEW.account_id;
    ELSE
        UPDATE accounts SET credits = credits + NEW.amount WHERE id = NEW.account_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER journal_lines_apply AFTER INSERT ON journal_lines
    FOR EACH ROW EXECUTE FUNCTION ledger_apply_line();

-- At commit: every entry touched has >= 2 lines and sum(debits) = sum(credits).
CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    entry uuid;
    d numeric;
    c numeric;
    n integer;
BEGIN
    IF TG_TABLE_NAME = 'journal_entries' THEN entry := NEW.id; ELSE entry := NEW.entry_id; END IF;
    SELECT coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0),
           coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0), count(*)
      INTO d, c, n FROM journal_lines WHERE entry_id = entry;
    IF n < 2 OR d <> c THEN
        RAISE EXCEPTION 'journal entry % does not balance: % lines, debits %, credits %',
            entry, n, d, c USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
CREATE CONSTRAINT TRIGGER journal_lines_balanced AFTER INSERT ON journal_lines
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
