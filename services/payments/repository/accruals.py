"""A business date's interest accruals posted set-based: one entry per batch of loans —
a receivable line per loan and one aggregated income line per (office, interest income
GL account), every line naming its office, so each office's lines balance on their
own — once per date and loan (``loan_accruals``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import asyncpg

from services.payments.domain import accounts as acc
from services.payments.domain.ledger import InsufficientBalance
from services.payments.repository import Conn
from services.payments.repository.ledger import PeriodClosed

# The rule in force for a role: the loan's product's own, else the default ('*') —
# two hash joins on the few rules, not a lookup per loan.
_RULES = """
  LEFT JOIN accounting_rules own_r ON own_r.kind = 'interest_receivable'
       AND own_r.product_id = d.product_id
  LEFT JOIN accounting_rules def_r ON def_r.kind = 'interest_receivable'
       AND def_r.product_id = '*'
  LEFT JOIN accounting_rules own_i ON own_i.kind = 'interest_income'
       AND own_i.product_id = d.product_id
  LEFT JOIN accounting_rules def_i ON def_i.kind = 'interest_income'
       AND def_i.product_id = '*'
"""

_POST_SQL = f"""
WITH dims AS (
    SELECT i.loan_id, i.amount, coalesce(d.office_id, c.office_id) AS office_id,
           coalesce(own_r.gl_code, def_r.gl_code, '3499') AS receivable_gl,
           coalesce(own_i.gl_code, def_i.gl_code, '3499') AS income_gl
      FROM unnest($2::text[], $3::numeric[]) AS i(loan_id, amount)
      LEFT JOIN loan_dimensions d ON d.loan_id = i.loan_id
      LEFT JOIN client_offices c ON c.client_id = d.client_id{_RULES}
), fresh AS (
    INSERT INTO loan_accruals (business_date, loan_id, amount, transfer_id)
    SELECT $1::date, x.loan_id, x.amount, $4::text FROM dims x ORDER BY x.loan_id
    ON CONFLICT (business_date, loan_id) DO NOTHING
    RETURNING loan_id
), posted AS (
    SELECT x.* FROM dims x JOIN fresh f ON f.loan_id = x.loan_id
), groups AS (
    SELECT office_id, income_gl, sum(amount) AS total, count(*) AS loans
      FROM posted GROUP BY office_id, income_gl
), e AS (
    INSERT INTO journal_entries (id, transfer_id, request_hash, kind, memo, amount,
                                 business_date)
    SELECT gen_random_uuid(), $4::text, md5($4::text || ':' || sum(g.total)::text),
           'interest_accrual', 'interest accrued on ' || sum(g.loans) || ' loan(s) at '
           || count(DISTINCT g.office_id) || ' office(s)', sum(g.total), $1::date
      FROM groups g HAVING count(*) > 0
    RETURNING id
)
INSERT INTO journal_lines (entry_id, account_id, side, amount, gl_code, office_id)
SELECT e.id, l.account_id, l.side, l.amount, l.gl_code, l.office_id
  FROM e, (SELECT 'interest_receivable:' || p.loan_id AS account_id, 'debit' AS side,
                  p.amount, p.receivable_gl AS gl_code, p.office_id
             FROM posted p
           UNION ALL
           SELECT '{acc.INTEREST_INCOME}', 'credit', g.total, g.income_gl, g.office_id
             FROM groups g) l
"""


def transfer_id(day: dt.date, batch: int) -> str:
    """The entry of a date's batch of accruals."""
    return f"accrual:{day.isoformat()}:{batch}"


async def hold_batch(conn: Conn, day: dt.date, batch: int) -> None:
    """Hold a date's batch until the transaction ends: the same batch delivered twice
    to two consumers at once is posted by the first, found done by the second."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                       transfer_id(day, batch))


async def post_day(conn: Conn, day: dt.date, batch: int, loan_ids: Sequence[str],
                   amounts: Sequence[Decimal]) -> int:
    """Post the accruals of loans not yet accrued for ``day``; the number of lines
    written. The receivable accounts are opened first; the ledger's statement trigger
    locks every account in id order and moves each once."""
    if not loan_ids:
        return 0
    # in loan id order: two batches sharing loans wait on each other's new rows in the
    # same order (the receivable accounts, ``loan_accruals``), never in a cycle
    loan_ids, amounts = map(list, zip(*sorted(zip(loan_ids, amounts, strict=True)),
                                      strict=True))
    receivables = [acc.interest_receivable(i) for i in loan_ids]
    await conn.execute(
        "INSERT INTO accounts (id, kind, name, normal_side, non_negative)"
        " SELECT a, $2, 'Interest receivable ' || substr(a, 21), 'debit', true"
        " FROM unnest($1::text[]) a ON CONFLICT (id) DO NOTHING",
        receivables, acc.Kind.INTEREST_RECEIVABLE.value)
    await conn.execute(
        "INSERT INTO accounts (id, kind, name, normal_side, non_negative, moved_at_commit)"
        " VALUES ($1, $2, 'Interest income', 'credit', false, true)"
        " ON CONFLICT (id) DO NOTHING",
        acc.INTEREST_INCOME, acc.Kind.INTEREST_INCOME.value)
    # the planner overestimates the CTEs' rows by orders of magnitude, and JIT-compiling
    # the plan would cost more than running it (600 ms of 1.2 s for 10 000 loans)
    await conn.execute("SET LOCAL jit = off")
    try:
        status = await conn.execute(_POST_SQL, day, list(loan_ids), list(amounts),
                                    transfer_id(day, batch))
    except asyncpg.CheckViolationError as exc:
        raise InsufficientBalance(f"the ledger refused the accruals: {exc}",
                                  field="amount") from None
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:
        raise PeriodClosed(str(exc), field="business_date") from None
    return int(status.split()[-1]) if status else 0
