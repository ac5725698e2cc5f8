-- Branch cash collections (a loan officer's cash recorded against a collection sheet),
-- a branch's day-end cash differences, and installments paid from voluntary savings by
-- standing instruction: each is a repayment payments records (so loans' answer finds
-- it) and books.

-- Two more sources of a repayment: `cash` (a collection sheet; external_ref is the
-- collection id) and `standing_instruction` (savings; external_ref is its payment id).
-- The allowed sources are extended, not rewritten, so sources another migration added
-- are kept.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT coalesce(array_agg(DISTINCT m[1]), ARRAY[]::text[]) INTO allowed
      FROM pg_constraint c,
           LATERAL regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
     WHERE c.conrelid = 'payments'::regclass AND c.conname = 'payments_source_check';
    allowed := allowed || ARRAY['callback', 'api', 'cash', 'standing_instruction'];
    SELECT array_agg(DISTINCT s ORDER BY s) INTO allowed FROM unnest(allowed) AS s;
    ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_source_check;
    EXECUTE format('ALTER TABLE payments ADD CONSTRAINT payments_source_check'
                   ' CHECK (source = ANY (%L::text[]))', allowed);
END $$;

-- The new ledger account kinds in the default chart: each branch's cash
-- (`cash:branch:<office>`) is cash in hand like the savings tellers' (1110); its day-end
-- differences (`suspense:cash:branch:<office>`) wait in a suspense account of their own
-- until regularised, rather than in 3499 (no rule).
INSERT INTO gl_accounts (code, name_fr, name_ar, type, usage, parent_code, regulator_code)
VALUES ('3481', 'Comptes d''attente — écarts de caisse des agences',
        'حسابات الانتظار — فوارق صناديق الوكالات', 'asset', 'detail', '3', '348')
ON CONFLICT (code) DO NOTHING;

INSERT INTO accounting_rules (product_id, kind, gl_code) VALUES
 ('*', 'branch_office_cash',   '1110'),
 ('*', 'branch_cash_suspense', '3481')
ON CONFLICT (product_id, kind) DO NOTHING;

-- Installments paid from voluntary savings (StandingInstructionPayment): which savings
-- account paid, so what loans does not take goes back to it. One row per savings
-- payment id: the same payment told twice is booked once.
CREATE TABLE standing_instruction_payments (
    payment_id   text          PRIMARY KEY CHECK (length(payment_id) BETWEEN 1 AND 200),
    payments_id  uuid          NOT NULL UNIQUE REFERENCES payments (id),
    account_id   text          NOT NULL,
    loan_id      text          NOT NULL,
    installment  integer       NOT NULL,
    due_date     date          NOT NULL,
    amount       numeric(14,2) NOT NULL CHECK (amount > 0),
    value_date   date          NOT NULL,
    booked_at    timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX standing_instruction_payments_account ON standing_instruction_payments (account_id);
