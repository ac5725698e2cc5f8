-- Savings withdrawals are paid through the payout machinery (kind `withdrawal`, one per
-- withdrawal: saga_id `withdrawal:<withdrawal id>`), naming the savings account they
-- debit. The allowed kinds are extended, not rewritten, so kinds another migration
-- added are kept.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT coalesce(array_agg(DISTINCT m[1]), ARRAY[]::text[]) INTO allowed
      FROM pg_constraint c,
           LATERAL regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
     WHERE c.conrelid = 'payouts'::regclass AND c.conname = 'payouts_kind_check';
    allowed := allowed || ARRAY['disbursement', 'refund', 'withdrawal'];
    SELECT array_agg(DISTINCT s ORDER BY s) INTO allowed FROM unnest(allowed) AS s;
    ALTER TABLE payouts DROP CONSTRAINT IF EXISTS payouts_kind_check;
    EXECUTE format('ALTER TABLE payouts ADD CONSTRAINT payouts_kind_check'
                   ' CHECK (kind = ANY (%L::text[]))', allowed);
END $$;

ALTER TABLE payouts ADD COLUMN IF NOT EXISTS account_id text;
-- a withdrawal names its savings account; nothing else does
ALTER TABLE payouts ADD CONSTRAINT payouts_withdrawal_account
    CHECK ((kind = 'withdrawal') = (account_id IS NOT NULL));
CREATE INDEX IF NOT EXISTS payouts_savings_account ON payouts (account_id)
    WHERE account_id IS NOT NULL;
