"""Close of business as set-based SQL: every statement handles the whole portfolio.

``$1`` is always the business date. No statement loops over loans in Python, so a
run costs a handful of statements whatever the number of loans. Each statement is
idempotent for a given business date (a re-run finds nothing left to do).
"""

from __future__ import annotations

from datetime import date

from services.loans.repository import Conn

# An installment still owed after its due date is overdue (on the due date it is only due).
# One already more than the tolerance late (the first night of a portfolio, or a catch-up)
# gets its late penalty in the same row version (APPLY_PENALTIES's rule), so the night
# does not write it twice; APPLY_PENALTIES then penalises the others as they pass the
# tolerance. Counts: (marked, of which penalised). No column an index of installments
# references changes (is_open stays true from pending to overdue, migration 0014), so each
# row is updated in place on its page (HOT): no new index entries, and only the heap pages
# in the WAL. Open installments are read by due date (installments_open_due, on is_open).
_PENALTY = """CASE l.penalty_kind
           WHEN 'flat' THEN round(l.penalty_value, 2)
           ELSE round((i.principal_due - i.principal_paid + i.interest_due - i.interest_paid
                       + i.fees_due - i.fees_paid + i.penalties_due - i.penalties_paid)
                      * l.penalty_value, 2) END"""
_PENALISED_NOW = """(l.penalty_kind IS NOT NULL AND i.penalty_applied_on IS NULL
        AND ($1::date - i.due_date) > l.penalty_tolerance_days)"""

MARK_OVERDUE = """
WITH marked AS (
    UPDATE installments i SET status = 'overdue',
           penalties_due = CASE WHEN """ + _PENALISED_NOW + """
                                THEN i.penalties_due + """ + _PENALTY + """
                                ELSE i.penalties_due END,
           penalty_applied_on = CASE WHEN """ + _PENALISED_NOW + """ THEN $1::date
                                     ELSE i.penalty_applied_on END
      FROM loans l
     WHERE l.id = i.loan_id AND l.status = 'active'
       AND i.is_open AND i.status = 'pending' AND i.due_date < $1::date
       AND i.principal_due + i.interest_due + i.fees_due + i.penalties_due
           > i.principal_paid + i.interest_paid + i.fees_paid + i.penalties_paid
    RETURNING """ + _PENALISED_NOW.replace("i.penalty_applied_on IS NULL",
                                            "i.penalty_applied_on = $1::date") + """ AS penalised
)
SELECT count(*), count(*) FILTER (WHERE penalised) FROM marked
"""

# One late penalty per overdue installment, once it is more than the tolerance late:
# flat, or a fraction of what is overdue on it, rounded half up to the cent
# (delinquency.penalty_for, in SQL). The tolerance is never negative (products refuse
# it), so only installments due before the date can be penalised: that bound changes no
# row and lets the open installments be read by due date (no index names status).
APPLY_PENALTIES = """
UPDATE installments i
   SET penalties_due = i.penalties_due + """ + _PENALTY + """,
       penalty_applied_on = $1::date
  FROM loans l
 WHERE l.id = i.loan_id AND l.status = 'active' AND i.is_open AND i.status = 'overdue'
   AND i.due_date < $1::date AND """ + _PENALISED_NOW + """
"""

ANALYZE = "ANALYZE installments, loans"

# The envelope is built in SQL exactly as shared.envelope.Envelope serialises it.
_ENVELOPE = """jsonb_build_object(
    'event_id', e.eid, 'type', {type!r}, 'version', 1, 'occurred_at', to_jsonb(now()),
    'aggregate_id', e.loan_id, 'correlation_id', $2::text, 'causation_id', NULL,
    'traceparent', NULL, 'payload', {payload})"""

# Days in arrears from the oldest overdue installment; buckets as delinquency.arrears_bucket;
# the worst days in arrears reached (the credit policy reads it at LoanClosed). Only loans
# with something overdue, or that were in arrears, are touched; the join to loans is by
# primary key, so a misestimated row count can never turn it quadratic.
#
# A loan that entered arrears, or moved to another bucket, is told in the same statement:
# its LoanInArrears goes into the outbox in this transaction and the loan is marked
# reported (cob_servicing.EMIT_ARREARS_CURED tells the cure) in the same row version as
# its new bucket. Marking it in the events transaction rewrote every such loan a second
# time, a full update of eleven indexes (loans_arrears_reported names the flag). What it
# owes is looked up per loan through the open installments by loan (is_open: no index
# names status, migration 0014), after the date's penalties and late charges (those steps
# run first). A re-run of the date finds nothing left to age, so tells nothing twice.
# Every overdue installment is due before $1 (marked overdue only once past its due date,
# and business dates only move forward; a rebuilt schedule's installments are pending),
# so the target's bound changes no row and reads the overdue installments through the
# open ones by due date instead of every open installment. $2 run id, $3 topic.
AGE_ARREARS = """
WITH target AS (
    SELECT loan_id AS id, $1::date - min(due_date) AS days
      FROM installments WHERE is_open AND status = 'overdue' AND due_date < $1::date
     GROUP BY loan_id
    UNION ALL
    SELECT l.id, 0 FROM loans l
     WHERE l.status = 'active' AND l.days_in_arrears > 0
       AND NOT EXISTS (SELECT 1 FROM installments i
                        WHERE i.loan_id = l.id AND i.is_open AND i.status = 'overdue')
), bucketed AS (
    SELECT id, days, CASE WHEN days <= 0 THEN 'current' WHEN days <= 30 THEN '1-30'
                          WHEN days <= 60 THEN '31-60' WHEN days <= 90 THEN '61-90'
                          ELSE '90+' END AS bucket
      FROM target
), moving AS (
    -- the bucket each loan is in before this statement (every part of a statement sees
    -- the rows as they were when it began), to tell only the loans it moves
    SELECT b.*, b.bucket <> 'current' AND b.bucket <> o.arrears_bucket AS tell
      FROM bucketed b JOIN loans o ON o.id = b.id
), aged AS (
    UPDATE loans l
       SET days_in_arrears = b.days, arrears_bucket = b.bucket, arrears_as_of = $1::date,
           bucket_changed_on = CASE WHEN b.bucket <> l.arrears_bucket THEN $1::date
                                    ELSE l.bucket_changed_on END,
           -- the worst reached, in the same row version (cob_servicing.TRACK_WORST_ARREARS
           -- then finds nothing left to raise instead of writing every aged loan again)
           max_days_in_arrears = GREATEST(l.max_days_in_arrears, b.days),
           arrears_reported = l.arrears_reported OR b.tell
      FROM moving b
     WHERE l.id = b.id AND l.status = 'active'
       AND (l.days_in_arrears, l.arrears_bucket) IS DISTINCT FROM (b.days, b.bucket)
    RETURNING l.id, l.client_id, l.days_in_arrears, l.arrears_bucket, b.tell
), e AS (
    SELECT gen_random_uuid() AS eid, a.id AS loan_id, a.client_id, a.days_in_arrears,
           a.arrears_bucket,
           (SELECT COALESCE(sum(i.principal_due + i.interest_due + i.fees_due
                                + i.penalties_due - i.principal_paid - i.interest_paid
                                - i.fees_paid - i.penalties_paid), 0)
              FROM installments i
             WHERE i.loan_id = a.id AND i.is_open AND i.status = 'overdue'
           )::numeric(14,2) AS amount
      FROM aged a WHERE a.tell
), told AS (
    INSERT INTO outbox (event_id, topic, message_key, type, envelope)
    SELECT e.eid, $3::text, e.loan_id, 'LoanInArrears', """ + _ENVELOPE.format(
    type="LoanInArrears", payload="""jsonb_build_object(
        'loan_id', e.loan_id, 'client_id', e.client_id, 'business_date', $1::date,
        'days_in_arrears', e.days_in_arrears, 'amount_overdue', e.amount::text,
        'bucket', e.arrears_bucket)""") + """
      FROM e
    RETURNING 1
)
SELECT (SELECT count(*) FROM aged), (SELECT count(*) FROM told)
"""

EMIT_REPAYMENT_DUE = """
WITH e AS (
    SELECT gen_random_uuid() AS eid, i.loan_id, l.client_id, i.number, i.due_date,
           (i.principal_due + i.interest_due + i.fees_due + i.penalties_due
            - i.principal_paid - i.interest_paid - i.fees_paid - i.penalties_paid) AS amount
      FROM installments i JOIN loans l ON l.id = i.loan_id
     WHERE l.status = 'active' AND i.is_open AND i.status = 'pending'
       AND i.due_date = $1::date + $3::int
)
INSERT INTO outbox (event_id, topic, message_key, type, envelope)
SELECT e.eid, $4::text, e.loan_id, 'RepaymentDue', """ + _ENVELOPE.format(
    type="RepaymentDue", payload="""jsonb_build_object(
        'loan_id', e.loan_id, 'client_id', e.client_id, 'business_date', $1::date,
        'due_date', e.due_date, 'installment', e.number, 'amount', e.amount::text)""") + """
  FROM e WHERE e.amount > 0
"""

# PAR(N): outstanding principal of loans more than N days in arrears (delinquency.par_ratio).
SNAPSHOT = """
INSERT INTO portfolio_snapshots (business_date, loans_active, outstanding_principal,
                                 par1_principal, par30_principal, par90_principal, buckets)
SELECT $1::date, count(*), COALESCE(sum(principal_outstanding), 0),
       COALESCE(sum(principal_outstanding) FILTER (WHERE days_in_arrears > 1), 0),
       COALESCE(sum(principal_outstanding) FILTER (WHERE days_in_arrears > 30), 0),
       COALESCE(sum(principal_outstanding) FILTER (WHERE days_in_arrears > 90), 0),
       (SELECT COALESCE(jsonb_object_agg(bucket, jsonb_build_object(
                   'loans', n, 'principal', p::numeric(16,2)::text)), '{}'::jsonb)
          FROM (SELECT arrears_bucket AS bucket, count(*) AS n,
                       sum(principal_outstanding) AS p
                  FROM loans WHERE status = 'active' GROUP BY arrears_bucket) b)
  FROM loans WHERE status = 'active'
ON CONFLICT (business_date) DO NOTHING
"""


def _count(tag: str) -> int:
    """Rows touched, from asyncpg's command tag ("UPDATE 12", "INSERT 0 3")."""
    return int(tag.rsplit(" ", 1)[-1]) if tag and tag[-1].isdigit() else 0


async def mark_overdue(conn: Conn, business_date: date) -> tuple[int, int]:
    """Installments marked overdue, and how many of them were penalised with it."""
    row = await conn.fetchrow(MARK_OVERDUE, business_date)
    assert row is not None
    return int(row[0]), int(row[1])


async def apply_penalties(conn: Conn, business_date: date) -> int:
    return _count(await conn.execute(APPLY_PENALTIES, business_date))


async def refresh_statistics(conn: Conn) -> None:
    await conn.execute(ANALYZE)


async def age_arrears(conn: Conn, business_date: date, run_id: str, topic: str
                      ) -> tuple[int, int]:
    """Loans re-aged, and how many of them were told ``LoanInArrears``."""
    row = await conn.fetchrow(AGE_ARREARS, business_date, run_id, topic)
    assert row is not None
    return int(row[0]), int(row[1])


async def emit_repayment_due(conn: Conn, business_date: date, run_id: str,
                             due_days_before: int, topic: str) -> int:
    """``RepaymentDue`` rows into the outbox; how many."""
    return _count(await conn.execute(EMIT_REPAYMENT_DUE, business_date, run_id,
                                     due_days_before, topic))


async def take_snapshot(conn: Conn, business_date: date) -> None:
    await conn.execute(SNAPSHOT, business_date)
