-- One round trip per relay cycle: mark what the previous cycle published, then
-- claim the next batch, in one (implicit) transaction.
--
-- The claim is the one of shared/outbox.py's CLAIM_SQL, serialised by the same
-- transaction-level advisory lock. The function is VOLATILE, so each statement
-- in it takes a fresh snapshot under READ COMMITTED: the claim's snapshot is
-- taken after the advisory lock is granted, and it sees every claim a relay that
-- held the lock before it committed (what keeps per-key order across relays).
-- Marking is fenced by the claim token, as before. Rows come back in id order.
CREATE OR REPLACE FUNCTION outbox_relay_step(
    p_mark_ids bigint[], p_mark_token uuid, p_token uuid, p_lease_s double precision,
    p_limit integer, p_lock_key text)
RETURNS TABLE (id bigint, topic text, message_key text, type text, envelope text,
               traceparent text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    IF p_mark_token IS NOT NULL AND cardinality(p_mark_ids) > 0 THEN
        UPDATE outbox SET published_at = now(), claimed_until = NULL
         WHERE outbox.id = ANY (p_mark_ids) AND outbox.claim_token = p_mark_token
           AND outbox.published_at IS NULL;
    END IF;
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(p_lock_key));
    RETURN QUERY
    WITH candidates AS (
        SELECT o.id FROM outbox o
        WHERE o.published_at IS NULL
          AND (o.claimed_until IS NULL OR o.claimed_until < now())
          AND NOT EXISTS (
              SELECT 1 FROM outbox p
              WHERE p.published_at IS NULL AND p.topic = o.topic
                AND p.message_key = o.message_key AND p.id < o.id
                AND p.claimed_until >= now())
        ORDER BY o.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE outbox o
           SET claimed_until = now() + make_interval(secs => p_lease_s),
               claim_token = p_token, attempts = o.attempts + 1
          FROM candidates c
         WHERE o.id = c.id
        RETURNING o.id, o.topic, o.message_key, o.type, o.envelope::text, o.traceparent
    )
    SELECT c.id, c.topic, c.message_key, c.type, c.envelope, c.traceparent
      FROM claimed c ORDER BY c.id;
END $$;
