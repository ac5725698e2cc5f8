-- The per-statement ledger trigger (0016) finds the accounts its lines move by their
-- keys: the accounts are locked and updated through `id = ANY (the statement's
-- accounts)`, an index scan whatever the planner guesses of the transition table, so
-- a close of business that grows `accounts` by a million rows in one night keeps the
-- same plan from its first batch to its last (a plan chosen while the table was small
-- would scan it whole for every batch). What is checked does not change.
CREATE OR REPLACE FUNCTION ledger_apply_lines() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mine text := (txid_current() % 4294967296)::text;
    entries uuid[];
    older uuid[];
    codes text[];
    ids text[];
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
    -- each account locked in id order, then moved once by the sum of its lines
    SELECT array_agg(DISTINCT account_id) INTO ids FROM added_lines;
    PERFORM 1 FROM accounts a WHERE a.id = ANY (ids) ORDER BY a.id FOR UPDATE;
    UPDATE accounts a SET debits = a.debits + s.d, credits = a.credits + s.c
      FROM (SELECT account_id,
                   coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS d,
                   coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS c
              FROM added_lines GROUP BY account_id) s
     WHERE a.id = ANY (ids) AND a.id = s.account_id;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved <> coalesce(cardinality(ids), 0) THEN
        SELECT x INTO missing FROM unnest(ids) x
         WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = x) LIMIT 1;
        RAISE EXCEPTION 'journal line on an unknown account %', missing
            USING ERRCODE = 'foreign_key_violation';
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
