-- The institution's shared accounts (settlement at a provider, suspense, the income
-- accounts, branch cash...) are moved at commit, not when a line is written.
--
-- Every collection credits `suspense` and debits `settlement:<provider>`, every
-- allocation debits `suspense` and credits the income accounts: a single row each,
-- that every posting locked from its first statement to its commit. Under load the
-- holder's own process is busy with other requests between its statements, so the
-- lock was held for tens of milliseconds and every other posting queued behind it (at
-- twice the repayment knee, 8 of the 10 busy database sessions were waiting for such a
-- row): the platform's throughput was the inverse of that hold time.
--
-- Now a line on a shared account (accounts.moved_at_commit) only adds its amounts to
-- the transaction's pending moves (the transaction-local setting noria.ledger_moves,
-- rolled back with the transaction or its savepoint); the first entry's balance check at
-- commit (journal_entries_balanced, deferred) locks those accounts in id order and
-- moves each once. The lock is held from there to the end of the commit, with no round
-- trip to the client in between. What is enforced does not change: an account's totals
-- are still the sum of its committed lines, and the CHECK still refuses a constrained
-- account going negative, now at commit (the posting code checks first against the
-- committed balance plus the transaction's own pending moves, so only two concurrent
-- postings lowering the same shared account past zero meet the CHECK itself).
-- A client's account (a loan's portfolio, receivables, a savings account) is moved and
-- locked as before, when its line is written; so is every account of a line added to an
-- entry of another (sub)transaction.
--
-- The migration updates only the few shared accounts (accounts of the client kinds are
-- the many: the new column's default is theirs, so no table rewrite).

ALTER TABLE accounts ADD COLUMN moved_at_commit boolean NOT NULL DEFAULT false;
UPDATE accounts SET moved_at_commit = true
 WHERE split_part(id, ':', 1) NOT IN ('portfolio', 'interest_receivable', 'allowance',
                                      'capitalised_interest', 'fee_receivable', 'savings');

-- The transaction's pending moves: {"account id": ["debits", "credits"], ...}
CREATE FUNCTION ledger_pending_moves() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('noria.ledger_moves', true), ''), '{}')::jsonb
$$;

-- Applies the pending moves (each account locked in id order, moved once) and forgets
-- them. Called at commit by the first entry's balance check, or at once for the lines
-- of an entry of another transaction.
CREATE FUNCTION ledger_flush_moves() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    moves jsonb := ledger_pending_moves();
    ids text[];
BEGIN
    IF moves = '{}'::jsonb THEN
        RETURN;
    END IF;
    PERFORM set_config('noria.ledger_moves', '', true);
    -- by their keys (an index scan: `accounts` holds a row per loan and receivable)
    ids := ARRAY(SELECT jsonb_object_keys(moves));
    PERFORM 1 FROM accounts a WHERE a.id = ANY (ids) ORDER BY a.id FOR UPDATE;
    UPDATE accounts a SET debits = a.debits + (m.value ->> 0)::numeric,
                          credits = a.credits + (m.value ->> 1)::numeric
      FROM jsonb_each(moves) m
     WHERE a.id = ANY (ids) AND a.id = m.key;
END $$;

CREATE OR REPLACE FUNCTION ledger_apply_lines() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mine text := (txid_current() % 4294967296)::text;
    entries uuid[];
    older uuid[];
    codes text[];
    ids text[];
    now_ids text[];
    later_ids text[];
    found integer;
    moved integer;
    missing text;
    unbalanced record;
BEGIN
    -- the lines' entries exist; those of an earlier transaction are checked below
    SELECT array_agg(DISTINCT entry_id) INTO entries FROM added_lines;
    SELECT count(*), array_agg(e.id) FILTER (WHERE e.xmin::text <> mine)
      INTO found, older FROM journal_entries e WHERE e.id = ANY (entries);
    IF found <> coalesce(cardinality(entries), 0) THEN
        SELECT x::text INTO missing FROM unnest(entries) x
         WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.id = x) LIMIT 1;
        RAISE EXCEPTION 'journal line of an unknown entry %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- their GL accounts exist
    SELECT array_agg(DISTINCT gl_code) INTO codes FROM added_lines WHERE gl_code IS NOT NULL;
    SELECT x INTO missing FROM unnest(codes) x
     WHERE NOT EXISTS (SELECT 1 FROM gl_accounts g WHERE g.code = x) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'journal line on an unknown GL account %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- their accounts exist: a client's is moved now, a shared one at commit (unless a
    -- line goes to an entry of another transaction, whose own commit has passed)
    SELECT array_agg(DISTINCT account_id) INTO ids FROM added_lines;
    SELECT count(*),
           array_agg(a.id) FILTER (WHERE NOT a.moved_at_commit OR older IS NOT NULL),
           array_agg(a.id) FILTER (WHERE a.moved_at_commit AND older IS NULL)
      INTO found, now_ids, later_ids FROM accounts a WHERE a.id = ANY (ids);
    IF found <> coalesce(cardinality(ids), 0) THEN
        SELECT x INTO missing FROM unnest(ids) x
         WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = x) LIMIT 1;
        RAISE EXCEPTION 'journal line on an unknown account %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF now_ids IS NOT NULL THEN
        -- each account locked in id order, then moved once by the sum of its lines
        PERFORM 1 FROM accounts a WHERE a.id = ANY (now_ids) ORDER BY a.id FOR UPDATE;
        -- (the accounts by their keys, joined to the lines' sums: a filter of the lines
        -- by a large array would compare each line with every id)
        UPDATE accounts a SET debits = a.debits + s.d, credits = a.credits + s.c
          FROM (SELECT account_id,
                       coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS d,
                       coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS c
                  FROM added_lines GROUP BY account_id) s
         WHERE a.id = ANY (now_ids) AND a.id = s.account_id;
        GET DIAGNOSTICS moved = ROW_COUNT;
        IF moved <> cardinality(now_ids) THEN  -- cannot happen: found above, never deleted
            RAISE EXCEPTION 'journal line on an unknown account'
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    IF later_ids IS NOT NULL THEN
        PERFORM set_config('noria.ledger_moves', (
            SELECT jsonb_object_agg(k, jsonb_build_array(d, c))::text
              FROM (SELECT k, sum(d) AS d, sum(c) AS c
                      FROM (SELECT m.key AS k, (m.value ->> 0)::numeric AS d,
                                   (m.value ->> 1)::numeric AS c
                              FROM jsonb_each(ledger_pending_moves()) m
                            UNION ALL
                            SELECT account_id,
                                   coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0),
                                   coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0)
                              FROM added_lines GROUP BY account_id
                            HAVING account_id = ANY (later_ids)) x
                     GROUP BY k) y), true);
    END IF;
    -- a line added to an entry of an earlier transaction: that entry must still balance
    IF older IS NOT NULL THEN
        FOR unbalanced IN
            SELECT x.entry_id AS id, count(*) AS n,
                   coalesce(sum(x.amount) FILTER (WHERE x.side = 'debit'), 0) AS d,
                   coalesce(sum(x.amount) FILTER (WHERE x.side = 'credit'), 0) AS c
              FROM journal_lines x WHERE x.entry_id = ANY (older) GROUP BY x.entry_id
        LOOP
            IF unbalanced.n < 2 OR unbalanced.d <> unbalanced.c THEN
                RAISE EXCEPTION
                    'journal entry % does not balance: % lines, debits %, credits %',
                    unbalanced.id, unbalanced.n, unbalanced.d, unbalanced.c
                    USING ERRCODE = 'check_violation';
            END IF;
        END LOOP;
    END IF;
    RETURN NULL;
END $$;

-- The balance check at commit (0011's), which first applies the pending moves: the
-- first entry's check moves them all, the others find none.
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    entry uuid;
    d numeric;
    c numeric;
    n integer;
BEGIN
    IF coalesce(current_setting('noria.ledger_moves', true), '') <> '' THEN
        PERFORM ledger_flush_moves();
    END IF;
    IF TG_TABLE_NAME = 'journal_entries' THEN
        entry := NEW.id;
    ELSE
        entry := NEW.entry_id;
        IF EXISTS (SELECT 1 FROM journal_entries je WHERE je.id = entry
                    AND je.xmin::text = (txid_current() % 4294967296)::text) THEN
            RETURN NULL;
        END IF;
    END IF;
    SELECT coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0),
           coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0), count(*)
      INTO d, c, n FROM journal_lines WHERE entry_id = entry;
    IF n < 2 OR d <> c THEN
        RAISE EXCEPTION 'journal entry % does not balance: % lines, debits %, credits %',
            entry, n, d, c USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
