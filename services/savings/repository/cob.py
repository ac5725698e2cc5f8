"""Savings close of business as set-based SQL: each statement covers every account.

``$1`` is always the business date. Each statement is idempotent for its date: the
accounts it changes are marked (``accrued_through``, ``last_posted_on``,
``maturity_date``, ``status``) so a re-run finds nothing left to do. The rounding is
``domain/interest.py``'s, in SQL: ``round(x, 10)`` per day, ``trunc(x, 2)`` for a
posting (the rest carried), ``round(gross * rate, 2)`` for the tax.
"""

from __future__ import annotations

from datetime import date

from services.savings.repository import Conn

# The envelope is built in SQL exactly as shared.envelope.Envelope serialises it.
_ENVELOPE = """jsonb_build_object(
    'event_id', e.eid, 'type', {type!r}, 'version', 1, 'occurred_at', to_jsonb(now()),
    'aggregate_id', e.account_id, 'correlation_id', $2::text, 'causation_id', NULL,
    'traceparent', NULL, 'payload', {payload})"""

# Term deposits maturing today: the interest of the term (accrued through yesterday) is
# posted, then the deposit renews for another term or waits to be paid out.
MATURE = """
WITH m AS (
    SELECT a.id, a.client_id, a.term_start, a.maturity_instruction, a.withholding_rate,
           a.accrued_interest + a.carried_interest AS total
      FROM accounts a
     WHERE a.kind = 'term_deposit' AND a.status = 'active' AND a.maturity_date = $1::date
       AND a.accrued_through = $1::date - 1
), g AS (
    SELECT m.*, trunc(m.total, 2) AS gross FROM m
), t AS (
    SELECT g.*, least(round(g.gross * g.withholding_rate, 2), g.gross) AS tax FROM g
), upd AS (
    UPDATE accounts a
       SET ledger_balance = a.ledger_balance + t.gross - t.tax,
           carried_interest = t.total - t.gross, accrued_interest = 0,
           last_posted_on = $1::date,
           status = CASE WHEN t.maturity_instruction = 'renew' THEN 'active' ELSE 'matured' END,
           term_start = CASE WHEN t.maturity_instruction = 'renew' THEN $1::date
                             ELSE a.term_start END,
           maturity_date = CASE WHEN t.maturity_instruction = 'renew'
                                THEN ($1::date + make_interval(months => a.term_months))::date
                                ELSE a.maturity_date END,
           updated_at = now(), version = a.version + 1
      FROM t WHERE a.id = t.id
    RETURNING a.id AS account_id, a.client_id, a.ledger_balance, a.maturity_date,
              t.term_start, t.maturity_instruction, t.gross, t.tax
), lines AS (
    INSERT INTO transactions (account_id, txn_key, kind, amount, value_date, created_by)
    SELECT account_id, 'interest:' || account_id || ':' || $1::date, 'interest', gross,
           $1::date, 'close-of-business' FROM upd WHERE gross > 0
    UNION ALL
    SELECT account_id, 'tax:' || account_id || ':' || $1::date, 'withholding_tax', -tax,
           $1::date, 'close-of-business' FROM upd WHERE tax > 0
), e AS (
    SELECT gen_random_uuid() AS eid, gen_random_uuid() AS eid2, upd.* FROM upd
), ev AS (
    INSERT INTO outbox (event_id, topic, message_key, type, envelope)
    SELECT e.eid, $3::text, e.account_id, 'InterestPosted', """ + _ENVELOPE.format(
    type="InterestPosted", payload="""jsonb_build_object(
        'account_id', e.account_id, 'client_id', e.client_id,
        'period_start', COALESCE(e.term_start, $1::date), 'period_end', $1::date,
        'gross', e.gross::text, 'withholding_tax', e.tax::text,
        'net', (e.gross - e.tax)::text, 'currency', 'MAD',
        'ledger_balance', e.ledger_balance::text, 'business_date', $1::date)""") + """
      FROM e WHERE e.gross > 0
    UNION ALL
    SELECT e.eid2, $3::text, e.account_id, 'TermDepositMatured', """ + _ENVELOPE.format(
    type="TermDepositMatured", payload="""jsonb_build_object(
        'account_id', e.account_id, 'client_id', e.client_id, 'maturity_date', $1::date,
        'interest', e.gross::text, 'instruction', e.maturity_instruction,
        'next_maturity_date', CASE WHEN e.maturity_instruction = 'renew'
                                   THEN to_jsonb(e.maturity_date) ELSE 'null'::jsonb END)""")\
    .replace("e.eid,", "e.eid2,", 1) + """
      FROM e
)
SELECT count(*) FROM upd
"""

# A day's accrual on the day's closing balance: what the account holds now less what
# was booked with a later value date (so a date caught up late accrues exactly what it
# would have accrued that night). A minimum-balance account only tracks its lowest
# closing balance of the period.
#
# Two statements, in one transaction: first the few accounts with lines dated after
# the date (a catch-up), joined to those lines' sum; then every other accruing account
# on its balance alone — one pass over ``accounts``, no self-join, no hash of 1.24
# million rows. Neither changes an indexed column, and the table keeps free room on its
# pages (fillfactor, migration 0004): each row's new version is a heap-only tuple on
# its own page, with no index entry to write.
_ACCRUE_SET = """
   SET accrued_interest = a.accrued_interest + CASE
           WHEN a.interest_basis = 'daily_balance' AND {closing} > 0 AND a.annual_rate > 0
           THEN round({closing} * a.annual_rate / $2::int, 10) ELSE 0 END,
       period_min_balance = CASE WHEN a.interest_basis = 'minimum_balance'
           THEN least(COALESCE(a.period_min_balance, {closing}), {closing}) END,
       period_days = a.period_days + 1,
       accrued_through = $1::date"""

ACCRUE_LATER = """
WITH later AS (
    SELECT account_id, sum(amount) AS s FROM transactions
     WHERE value_date > $1::date GROUP BY account_id
)
UPDATE accounts a""" + _ACCRUE_SET.format(closing="(a.ledger_balance - l.s)") + """
  FROM later l
 WHERE a.id = l.account_id AND a.status IN ('active', 'dormant')
   AND a.accrued_through < $1::date
"""

ACCRUE = """
UPDATE accounts a""" + _ACCRUE_SET.format(closing="a.ledger_balance") + """
 WHERE a.status IN ('active', 'dormant') AND a.accrued_through < $1::date
"""

# Period end: accrued (or minimum balance x days) + carried, truncated to the centime;
# the rest carried; withholding tax half up. $4/$5: whether the date ends a month /
# a quarter, $6/$7 the month's / quarter's first day, $8 the days of the year.
POST = """
WITH p AS (
    SELECT a.id, a.client_id, a.withholding_rate, a.posting_period,
           a.carried_interest + CASE WHEN a.interest_basis = 'minimum_balance'
               THEN CASE WHEN COALESCE(a.period_min_balance, 0) > 0 AND a.annual_rate > 0
                         THEN a.period_days * round(a.period_min_balance * a.annual_rate
                                                    / $8::int, 10)
                         ELSE 0 END
               ELSE a.accrued_interest END AS total
      FROM accounts a
     WHERE a.status IN ('active', 'dormant') AND a.kind <> 'term_deposit'
       AND a.accrued_through = $1::date
       AND (a.last_posted_on IS NULL OR a.last_posted_on < $1::date)
       AND ((a.posting_period = 'monthly' AND $4::boolean)
            OR (a.posting_period = 'quarterly' AND $5::boolean))
), t AS (
    SELECT p.*, trunc(p.total, 2) AS gross,
           least(round(trunc(p.total, 2) * p.withholding_rate, 2), trunc(p.total, 2)) AS tax
      FROM p
), upd AS (
    UPDATE accounts a
       SET ledger_balance = a.ledger_balance + t.gross - t.tax,
           carried_interest = t.total - t.gross, accrued_interest = 0,
           period_min_balance = NULL, period_days = 0, last_posted_on = $1::date,
           updated_at = now(), version = a.version + 1
      FROM t WHERE a.id = t.id
    RETURNING a.id AS account_id, a.client_id, a.ledger_balance, t.gross, t.tax,
              t.posting_period
), lines AS (
    INSERT INTO transactions (account_id, txn_key, kind, amount, value_date, created_by)
    SELECT account_id, 'interest:' || account_id || ':' || $1::date, 'interest', gross,
           $1::date, 'close-of-business' FROM upd WHERE gross > 0
    UNION ALL
    SELECT account_id, 'tax:' || account_id || ':' || $1::date, 'withholding_tax', -tax,
           $1::date, 'close-of-business' FROM upd WHERE tax > 0
), e AS (
    SELECT gen_random_uuid() AS eid, upd.* FROM upd WHERE gross > 0
), ev AS (
    INSERT INTO outbox (event_id, topic, message_key, type, envelope)
    SELECT e.eid, $3::text, e.account_id, 'InterestPosted', """ + _ENVELOPE.format(
    type="InterestPosted", payload="""jsonb_build_object(
        'account_id', e.account_id, 'client_id', e.client_id,
        'period_start', CASE WHEN e.posting_period = 'monthly' THEN $6::date ELSE $7::date END,
        'period_end', $1::date, 'gross', e.gross::text, 'withholding_tax', e.tax::text,
        'net', (e.gross - e.tax)::text, 'currency', 'MAD',
        'ledger_balance', e.ledger_balance::text, 'business_date', $1::date)""") + """
      FROM e
)
SELECT count(*) FROM upd
"""

# Voluntary accounts without a client transaction for their product's months go dormant.
DORMANCY = """
WITH d AS (
    UPDATE accounts a SET status = 'dormant', updated_at = now(), version = a.version + 1
     WHERE a.status = 'active' AND a.kind = 'voluntary' AND a.dormant_after_months IS NOT NULL
       AND (COALESCE(a.last_client_txn_on, a.opened_on)
            + make_interval(months => a.dormant_after_months))::date < $1::date
    RETURNING a.id AS account_id, a.client_id, a.last_client_txn_on
), e AS (
    SELECT gen_random_uuid() AS eid, d.* FROM d
), ev AS (
    INSERT INTO outbox (event_id, topic, message_key, type, envelope)
    SELECT e.eid, $3::text, e.account_id, 'AccountDormant', """ + _ENVELOPE.format(
    type="AccountDormant", payload="""jsonb_build_object(
        'account_id', e.account_id, 'client_id', e.client_id,
        'last_client_transaction_on', e.last_client_txn_on, 'business_date', $1::date)""") + """
      FROM e
)
SELECT count(*) FROM d
"""


async def mature(conn: Conn, day: date, run_id: str, topic: str) -> int:
    n: int = await conn.fetchval(MATURE, day, run_id, topic)
    return n


def _count(tag: str) -> int:
    return int(tag.rsplit(" ", 1)[-1]) if tag and tag[-1].isdigit() else 0


async def accrue(conn: Conn, day: date, days_in_year: int) -> int:
    """Both statements in the caller's transaction: the accounts with later-dated lines
    first (marked accrued through the date, so the second skips them)."""
    later = _count(await conn.execute(ACCRUE_LATER, day, days_in_year))
    return later + _count(await conn.execute(ACCRUE, day, days_in_year))


async def post(conn: Conn, day: date, run_id: str, topic: str, *, month_end: bool,
               quarter_end: bool, month_start: date, quarter_start: date,
               days_in_year: int) -> int:
    n: int = await conn.fetchval(POST, day, run_id, topic, month_end, quarter_end,
                                 month_start, quarter_start, days_in_year)
    return n


async def dormancy(conn: Conn, day: date, run_id: str, topic: str) -> int:
    n: int = await conn.fetchval(DORMANCY, day, run_id, topic)
    return n


async def first_uncovered(conn: Conn) -> date | None:
    """The earliest date an accruing account has not been accrued for."""
    d: date | None = await conn.fetchval(
        "SELECT min(accrued_through) + 1 FROM accounts WHERE status IN ('active', 'dormant')")
    return d
