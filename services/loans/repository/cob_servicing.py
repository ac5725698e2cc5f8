"""Close of business, the servicing steps: late charges, arrears cure, reminders and the
accrual feed. Set-based like ``cob.py``: ``$1`` is the business date, each statement
handles the whole portfolio and is idempotent for a date (a table remembers what was
charged, sent or published for it), so a re-run or a catch-up of missed nights changes
nothing twice.
"""

from __future__ import annotations

from datetime import date

from services.loans.repository import Conn

# The envelope as shared.envelope.Envelope serialises it; e.aggregate is the record key.
_ENVELOPE = """jsonb_build_object(
    'event_id', e.eid, 'type', {type!r}, 'version', 1, 'occurred_at', to_jsonb(now()),
    'aggregate_id', e.aggregate, 'correlation_id', $2::text, 'causation_id', NULL,
    'traceparent', NULL, 'payload', {payload})"""

_OWED = """(i.principal_due + i.interest_due + i.fees_due + i.penalties_due
             - i.principal_paid - i.interest_paid - i.fees_paid - i.penalties_paid)"""

# domain.charges.charge_for, in SQL, on every overdue installment of a product with a
# late_charge rule. Basis: overdue principal, or principal + interest + fees overdue.
APPLY_LATE_CHARGES = """
WITH cand AS (
    SELECT i.loan_id, i.number, ($1::date - i.due_date) AS days_late,
           p.terms->'late_charge' AS r,
           CASE WHEN p.terms->'late_charge'->>'basis' = 'overdue_principal'
                THEN i.principal_due - i.principal_paid
                ELSE i.principal_due - i.principal_paid + i.interest_due - i.interest_paid
                     + i.fees_due - i.fees_paid END AS basis
      FROM installments i
      JOIN loans l ON l.id = i.loan_id
      JOIN products p ON p.id = l.product_id AND p.version = l.product_version
     WHERE l.status = 'active' AND i.is_open AND i.status = 'overdue'
       AND jsonb_typeof(p.terms->'late_charge') = 'object'
       AND ($1::date - i.due_date) > COALESCE((p.terms->'late_charge'->>'grace_days')::int, 0)
), hist AS (
    SELECT c.*, COALESCE(h.n, 0) AS times, COALESCE(h.total, 0) AS so_far,
           COALESCE((c.r->>'grace_days')::int, 0) AS grace,
           COALESCE((c.r->>'period_days')::int, 30) AS period,
           CASE c.r->>'calculation' WHEN 'flat' THEN (c.r->>'value')::numeric
                ELSE round(c.basis * (c.r->>'value')::numeric, 2) END AS raw
      FROM cand c
      LEFT JOIN LATERAL (SELECT count(*) AS n, sum(x.amount) AS total FROM late_charges x
                          WHERE x.loan_id = c.loan_id AND x.number = c.number
                            AND x.charged_on < $1::date) h ON true
     WHERE c.basis > 0
), priced AS (
    SELECT loan_id, number,
           GREATEST(LEAST(raw,
               CASE WHEN r->>'cap_amount' IS NULL THEN raw
                    ELSE (r->>'cap_amount')::numeric - so_far END,
               CASE WHEN r->>'cap_annual_rate' IS NULL THEN raw
                    ELSE round(basis * (r->>'cap_annual_rate')::numeric * days_late / 365.0, 2)
                         - so_far END), 0) AS amount
      FROM hist
     WHERE CASE r->>'frequency' WHEN 'one_time' THEN times = 0
                                WHEN 'per_day' THEN true
                                ELSE (days_late - grace - 1) % period = 0 END
), ins AS (
    INSERT INTO late_charges (loan_id, number, charged_on, amount)
    SELECT loan_id, number, $1::date, amount FROM priced WHERE amount > 0
    ON CONFLICT DO NOTHING
    RETURNING loan_id, number, amount
)
UPDATE installments i SET penalties_due = i.penalties_due + ins.amount
  FROM ins WHERE i.loan_id = ins.loan_id AND i.number = ins.number
"""

# The worst days in arrears a loan has reached (the credit policy reads it at LoanClosed).
# Close of business's ageing (cob.AGE_ARREARS) raises it as it ages a loan; this catches
# any loan whose days in arrears were set another way, and normally finds nothing.
TRACK_WORST_ARREARS = """
UPDATE loans SET max_days_in_arrears = days_in_arrears
 WHERE status = 'active' AND days_in_arrears > max_days_in_arrears
"""

# A loan told to be in arrears that is current again (by a repayment or close of business)
# or repaid: LoanArrearsCured, once.
EMIT_ARREARS_CURED = """
WITH cured AS (
    UPDATE loans l SET arrears_reported = false
     WHERE l.arrears_reported AND (l.status = 'closed'
                                   OR (l.status = 'active' AND l.days_in_arrears = 0))
    RETURNING l.id, l.client_id, l.reference, l.status
), e AS (SELECT gen_random_uuid() AS eid, c.id AS aggregate, c.* FROM cured c)
INSERT INTO outbox (event_id, topic, message_key, type, envelope)
SELECT e.eid, $3::text, e.id, 'LoanArrearsCured', """ + _ENVELOPE.format(
    type="LoanArrearsCured", payload="""jsonb_build_object(
        'loan_id', e.id, 'client_id', e.client_id, 'business_date', $1::date,
        'reference', e.reference, 'loan_closed', e.status = 'closed')""") + """
  FROM e
"""

# Reminders. Due soon: N days before (the product's reminder_days_before, else $4); due
# today; overdue: on the days late of the product's overdue_reminder_days (default 1, 3, 7,
# 15, 30), then every overdue_reminder_every days (default 30). One per installment, kind
# and date (reminders_sent).
EMIT_REMINDERS = """
WITH cand AS (
    SELECT i.loan_id, i.number, i.due_date, l.client_id, l.reference, """ + _OWED + """ AS owed,
           ($1::date - i.due_date) AS days_late,
           COALESCE((p.terms->>'reminder_days_before')::int, $4::int) AS before,
           CASE WHEN jsonb_typeof(p.terms->'overdue_reminder_days') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(p.terms->'overdue_reminder_days')
                           )::int[]
                ELSE ARRAY[1, 3, 7, 15, 30] END AS cadence,
           COALESCE((p.terms->>'overdue_reminder_every')::int, 30) AS every
      FROM installments i
      JOIN loans l ON l.id = i.loan_id
      JOIN products p ON p.id = l.product_id AND p.version = l.product_version
     WHERE l.status = 'active' AND i.is_open
       -- nothing due later than the longest "due soon" notice can be reminded of today:
       -- the open-installments index reads those days only, not two months of them
       AND i.due_date <= $1::date + LEAST(60, (
             SELECT GREATEST($4::int, COALESCE(max((terms->>'reminder_days_before')::int), 0))
               FROM products))
), kinds AS (
    SELECT c.*, CASE
        WHEN c.days_late = -c.before AND c.before > 0 THEN 'due_soon'
        WHEN c.days_late = 0 THEN 'due_today'
        WHEN c.days_late > 0 AND (c.days_late = ANY (c.cadence)
             OR (c.days_late > (SELECT max(x) FROM unnest(c.cadence) x) AND c.every > 0
                 AND (c.days_late - (SELECT max(x) FROM unnest(c.cadence) x)) % c.every = 0))
             THEN 'overdue' END AS kind
      FROM cand c WHERE c.owed > 0
), due AS MATERIALIZED (
    -- the date's reminders not yet sent (a re-run of the date finds them all sent; runs
    -- of one date never overlap: close of business holds the date's lock)
    SELECT k.* FROM kinds k
     WHERE k.kind IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM reminders_sent r
                        WHERE r.loan_id = k.loan_id AND r.number = k.number
                          AND r.kind = k.kind AND r.business_date = $1::date)
), sent AS (
    INSERT INTO reminders_sent (loan_id, number, kind, business_date)
    SELECT loan_id, number, kind, $1::date FROM due
), e AS (
    SELECT gen_random_uuid() AS eid, k.loan_id AS aggregate, k.* FROM due k
)
INSERT INTO outbox (event_id, topic, message_key, type, envelope)
SELECT e.eid, $3::text, e.loan_id,
       CASE e.kind WHEN 'due_soon' THEN 'InstallmentDueSoon'
                   WHEN 'due_today' THEN 'InstallmentDueToday' ELSE 'InstallmentOverdue' END,
       jsonb_build_object(
    'event_id', e.eid, 'type', CASE e.kind WHEN 'due_soon' THEN 'InstallmentDueSoon'
        WHEN 'due_today' THEN 'InstallmentDueToday' ELSE 'InstallmentOverdue' END,
    'version', 1, 'occurred_at', to_jsonb(now()), 'aggregate_id', e.aggregate,
    'correlation_id', $2::text, 'causation_id', NULL, 'traceparent', NULL,
    'payload', jsonb_build_object(
        'loan_id', e.loan_id, 'client_id', e.client_id, 'reference', e.reference,
        'business_date', $1::date, 'installment', e.number, 'due_date', e.due_date,
        'amount_due', e.owed::numeric(14,2)::text)
        || CASE e.kind WHEN 'due_soon' THEN jsonb_build_object('days_before', -e.days_late)
                       WHEN 'overdue' THEN jsonb_build_object('days_late', e.days_late)
                       ELSE '{}'::jsonb END)
  FROM e
"""

# InterestAccrued for the date, in batches of $4 loans, once (accruals_published).
# A day's interest = balance * annual rate * year fraction of (date - 1, date] by the
# product's day count, rounded half up to the cent (domain.accrual.daily_interest);
# balance: outstanding principal (declining balance) or the loan's principal (flat).
# Loans disbursed on the date itself have not run a day yet. fees_due: the fees of the
# loan's installments falling due on the date still unpaid (fees paid ahead were income
# when paid), so payments accrues them when due (version 2 of the event).
EMIT_INTEREST_ACCRUED = """
WITH claim AS (
    INSERT INTO accruals_published (business_date, loans, batches)
    SELECT $1::date, n, GREATEST(1, ceil(n::numeric / $4::int)::int)
      FROM (SELECT count(*)::int AS n FROM loans
             WHERE status = 'active' AND disbursed_on < $1::date) c
    ON CONFLICT DO NOTHING
    RETURNING loans, batches
), yf AS (
    SELECT d1, d2, prev, $1::date AS cur FROM (
        SELECT ($1::date - 1) AS prev,
               LEAST(extract(day FROM $1::date - 1)::int, 30) AS d1,
               extract(day FROM $1::date)::int AS d2r) t,
        LATERAL (SELECT CASE WHEN t.d2r = 31 AND t.d1 = 30 THEN 30 ELSE t.d2r END AS d2) u
), days30 AS (
    SELECT (360 * (extract(year FROM cur) - extract(year FROM prev))
            + 30 * (extract(month FROM cur) - extract(month FROM prev)) + (d2 - d1))::numeric
           AS n FROM yf
), accrued AS (
    SELECT l.id, l.product_id, l.days_in_arrears,
           l.restructured, COALESCE(f.fees, 0) AS fees_due,
           round(CASE WHEN p.terms->>'interest_method' = 'flat' THEN l.principal
                      ELSE l.principal_outstanding END
                 * (p.terms->>'annual_rate')::numeric
                 * CASE COALESCE(p.terms->>'day_count', 'actual_365')
                       WHEN 'actual_360' THEN 1 / 360.0
                       WHEN '30_360' THEN (SELECT n FROM days30) / 360.0
                       ELSE 1 / 365.0 END, 2) AS interest,
           (row_number() OVER (ORDER BY l.id) - 1) / $4::int AS batch
      FROM loans l JOIN products p ON p.id = l.product_id AND p.version = l.product_version
      LEFT JOIN (SELECT i.loan_id, sum(GREATEST(i.fees_due - i.fees_paid, 0)) AS fees
                   FROM installments i
                  WHERE i.due_date = $1::date AND i.is_open
                  GROUP BY i.loan_id) f ON f.loan_id = l.id
     WHERE l.status = 'active' AND l.disbursed_on < $1::date
), batches AS (
    -- built as json text and made jsonb once, at the end: a jsonb value nested in
    -- jsonb_build_object is walked token by token at each level, and a batch holds
    -- thousands of loans (the stored envelope is the same jsonb either way)
    SELECT b.batch, COALESCE(json_agg(json_build_object(
               'loan_id', a.id, 'interest', a.interest::numeric(14,2)::text,
               'days_in_arrears', a.days_in_arrears, 'product_id', a.product_id,
               'office_id', NULL, 'restructured', a.restructured,
               'fees_due', a.fees_due::numeric(14,2)::text) ORDER BY a.id)
               FILTER (WHERE a.id IS NOT NULL), '[]'::json) AS loans
      FROM generate_series(0, (SELECT batches FROM claim) - 1) AS b(batch)
      LEFT JOIN accrued a ON a.batch = b.batch
     GROUP BY b.batch
), e AS (SELECT gen_random_uuid() AS eid, $1::date::text AS aggregate, b.* FROM batches b)
INSERT INTO outbox (event_id, topic, message_key, type, envelope)
SELECT e.eid, $3::text, e.aggregate, 'InterestAccrued', json_build_object(
    'event_id', e.eid, 'type', 'InterestAccrued', 'version', 2, 'occurred_at', to_json(now()),
    'aggregate_id', e.aggregate, 'correlation_id', $2::text, 'causation_id', NULL,
    'traceparent', NULL, 'payload', json_build_object(
        'business_date', $1::date, 'batch', e.batch,
        'batches', (SELECT batches FROM claim), 'loans', e.loans))::jsonb
  FROM e WHERE EXISTS (SELECT 1 FROM claim)
"""


def _count(tag: str) -> int:
    return int(tag.rsplit(" ", 1)[-1]) if tag and tag[-1].isdigit() else 0


async def apply_late_charges(conn: Conn, business_date: date) -> int:
    """Late charges of the date; how many installments were charged."""
    return _count(await conn.execute(APPLY_LATE_CHARGES, business_date))


async def track_worst_arrears(conn: Conn, business_date: date) -> int:
    return _count(await conn.execute(TRACK_WORST_ARREARS))


async def emit_servicing_events(conn: Conn, business_date: date, run_id: str, topic: str, *,
                                due_days_before: int, accrual_batch_size: int = 5000
                                ) -> dict[str, int]:
    """In the date's events transaction: cures, reminders and the accrual feed; how many of
    each. (``LoanInArrears`` went out with the ageing, cob.AGE_ARREARS, which marks the
    loans it told as reported.)"""
    cured = _count(await conn.execute(EMIT_ARREARS_CURED, business_date, run_id, topic))
    reminders = _count(await conn.execute(EMIT_REMINDERS, business_date, run_id, topic,
                                          due_days_before))
    accrual = _count(await conn.execute(EMIT_INTEREST_ACCRUED, business_date, run_id, topic,
                                        accrual_batch_size))
    return {"arrears_cured_events": cured, "reminder_events": reminders,
            "interest_accrued_batches": accrual}
