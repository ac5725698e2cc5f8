-- Loan servicing in the ledger (issue 14): payments paid to a loan's short reference,
-- payments held for review (a mistyped reference), early settlement's waived interest,
-- interest capitalised by a restructuring, late charges waived.

-- A payment held for review stays in suspense (`held`) until two operators match it to
-- a loan or refund it. The allowed statuses are extended, not rewritten.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT coalesce(array_agg(DISTINCT m[1]), ARRAY[]::text[]) INTO allowed
      FROM pg_constraint c,
           LATERAL regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
     WHERE c.conrelid = 'payments'::regclass AND c.conname = 'payments_status_check';
    allowed := allowed || ARRAY['received', 'posted', 'refund_pending', 'refunded',
                                'refund_failed', 'unconfirmed', 'rejected_unconfirmed',
                                'held'];
    SELECT array_agg(DISTINCT s ORDER BY s) INTO allowed FROM unnest(allowed) AS s;
    ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_status_check;
    EXECUTE format('ALTER TABLE payments ADD CONSTRAINT payments_status_check'
                   ' CHECK (status = ANY (%L::text[]))', allowed);
END $$;

-- `loan_id` keeps the reference the payer typed (a loan id or a short reference);
-- `resolved_loan_id` is the loan loans applied it to (RepaymentApplied), or the loan two
-- operators matched a held payment to.
ALTER TABLE payments ADD COLUMN IF NOT EXISTS resolved_loan_id text;
CREATE INDEX IF NOT EXISTS payments_held ON payments (received_at, id) WHERE status = 'held';

-- Operators' decision on a held payment (match it to a loan, or refund it) is
-- maker-checker like the other decisions that move money.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT coalesce(array_agg(DISTINCT m[1]), ARRAY[]::text[]) INTO allowed
      FROM pg_constraint c,
           LATERAL regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
     WHERE c.conrelid = 'payout_approvals'::regclass
       AND c.conname = 'payout_approvals_kind_check';
    allowed := allowed || ARRAY['settlement', 'refund_retry', 'held_payment'];
    SELECT array_agg(DISTINCT s ORDER BY s) INTO allowed FROM unnest(allowed) AS s;
    ALTER TABLE payout_approvals DROP CONSTRAINT IF EXISTS payout_approvals_kind_check;
    EXECUTE format('ALTER TABLE payout_approvals ADD CONSTRAINT payout_approvals_kind_check'
                   ' CHECK (kind = ANY (%L::text[]))', allowed);
END $$;

-- Interest waived on an early settlement (contra-income: what was recognised but never
-- earned, accrual basis) and interest capitalised by a restructuring but not yet
-- received (reserved: a contra-asset, per loan, like the PCEC's "agios réservés").
INSERT INTO gl_accounts (code, name_fr, name_ar, type, usage, parent_code, regulator_code)
VALUES ('7115', 'Intérêts abandonnés sur remboursements anticipés',
        'الفوائد المتنازل عنها عند السداد المسبق', 'income', 'detail', '7', '711'),
       ('2175', 'Intérêts capitalisés réservés (restructurations)',
        'الفوائد المرسملة المحجوزة (إعادة الهيكلة)', 'asset', 'detail', '2', '2178')
ON CONFLICT (code) DO NOTHING;

INSERT INTO accounting_rules (product_id, kind, gl_code) VALUES
 ('*', 'interest_waived',              '7115'),
 ('*', 'capitalised_interest_reserve', '2175')
ON CONFLICT (product_id, kind) DO NOTHING;

-- What loan servicing told payments and what the ledger made of it, once per event:
-- the interest waived on an early settlement (booked: the receivable reversed under
-- accrual; 0 under cash basis, a memo only), late charges waived (a memo: penalties are
-- income when paid), interest capitalised by a restructuring (booked in full).
CREATE TABLE loan_servicing_memos (
    id            bigserial     PRIMARY KEY,
    kind          text          NOT NULL CHECK (kind IN ('interest_waived',
                                 'late_charges_waived', 'interest_capitalised')),
    source_id     text          NOT NULL CHECK (length(source_id) BETWEEN 1 AND 200),
    loan_id       text          NOT NULL,
    amount        numeric(14,2) NOT NULL CHECK (amount >= 0),
    booked        numeric(14,2) NOT NULL DEFAULT 0 CHECK (booked >= 0),
    basis         text          NOT NULL CHECK (basis IN ('cash', 'accrual')),
    business_date date,
    transfer_id   text,
    detail        jsonb         NOT NULL DEFAULT '{}',
    recorded_at   timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (kind, source_id)
);
CREATE INDEX loan_servicing_memos_loan ON loan_servicing_memos (loan_id, id);
