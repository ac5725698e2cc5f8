-- The ledger's triggers plan their key lookups once per session, not on every posting.
--
-- The lines' trigger and the commit's flush look rows up by key from arrays of their
-- own (the lines' entries, accounts and GL codes; the accounts to lock). PostgreSQL's
-- plan cache plans such a statement anew on every call while its generic plan is
-- estimated dearer than the custom ones, and a custom plan knows the array's length
-- where the generic one guesses ten, so every posting planned them again (13 % of the
-- backend's CPU went to the planner while it posted collections and allocations:
-- perf, bench/ledger_posting.py). Read through a sub-select, the array's length is
-- unknown to both plans, their costs are equal, and the generic plan (the same index
-- scan) is kept from the sixth call, as shared.db.any_of does for the services' own
-- statements.
--
-- One statement is left to plan on every call: the move of the client's accounts by
-- the sums of their lines joins the lines just inserted, whose number (two, or 20 000 on
-- the accruals night) its plan must know.

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
      INTO found, older FROM journal_entries e WHERE e.id = ANY (ARRAY(SELECT unnest(entries)));
    IF found <> coalesce(cardinality(entries), 0) THEN
        SELECT x::text INTO missing FROM unnest(entries) x
         WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.id = x) LIMIT 1;
        RAISE EXCEPTION 'journal line of an unknown entry %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- their GL accounts exist
    SELECT array_agg(DISTINCT gl_code) INTO codes FROM added_lines WHERE gl_code IS NOT NULL;
    SELECT x INTO missing FROM unnest(ARRAY(SELECT unnest(codes))) x
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
      INTO found, now_ids, later_ids FROM accounts a WHERE a.id = ANY (ARRAY(SELECT unnest(ids)));
    IF found <> coalesce(cardinality(ids), 0) THEN
        SELECT x INTO missing FROM unnest(ids) x
         WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = x) LIMIT 1;
        RAISE EXCEPTION 'journal line on an unknown account %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF now_ids IS NOT NULL THEN
        -- each account locked in id order, then moved once by the sum of its lines
        PERFORM 1 FROM accounts a WHERE a.id = ANY (ARRAY(SELECT unnest(now_ids))) ORDER BY a.id FOR UPDATE;
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
                            HAVING account_id = ANY (ARRAY(SELECT unnest(later_ids)))) x
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

CREATE OR REPLACE FUNCTION ledger_flush_moves() RETURNS void LANGUAGE plpgsql AS $$
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
    PERFORM 1 FROM accounts a WHERE a.id = ANY (ARRAY(SELECT unnest(ids))) ORDER BY a.id FOR UPDATE;
    UPDATE accounts a SET debits = a.debits + (m.value ->> 0)::numeric,
                          credits = a.credits + (m.value ->> 1)::numeric
      FROM jsonb_each(moves) m
     WHERE a.id = ANY (ARRAY(SELECT unnest(ids))) AND a.id = m.key;
END $$;
