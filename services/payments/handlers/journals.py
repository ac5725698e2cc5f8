"""Manual journals (maker-checker), period close and the year-end close."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from services.payments.domain import accounts as acc
from services.payments.domain import journals as rules
from services.payments.domain.accounts import Side
from services.payments.domain.chart import GLType
from services.payments.domain.ledger import ZERO, Entry, Line, validate
from services.payments.domain.statements import balance
from services.payments.repository import Conn
from services.payments.repository import accrual_batches as accrual_batches_repo
from services.payments.repository import gl as gl_repo
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import periods as repo
from services.payments.repository import statements as statements_repo
from services.payments.repository.ledger import PeriodClosed
from shared.errors import Conflict, NotFound


async def _open(conn: Conn, day: dt.date) -> None:
    closed = await repo.closed_period_of(conn, day)
    if closed is not None:
        raise PeriodClosed(f"period {closed} is closed: nothing dated {day} can be posted; "
                           "post the correction in the open period", field="business_date")


async def propose(conn: Conn, *, day: dt.date, reason: str, attachments: list[str],
                  lines: list[rules.JournalLine], office_id: str | None,
                  by: str) -> asyncpg.Record:
    """Record a proposal (nothing posted): it must balance, on detail accounts, in an
    open period."""
    journal_id = uuid.uuid4()
    entry = rules.journal_entry(str(journal_id), day, lines, await gl_repo.chart(conn),
                                reason, office_id)
    await _open(conn, day)
    return await repo.insert_journal(
        conn, journal_id=journal_id, business_date=day, reason=reason,
        attachments=attachments,
        lines=[{"gl_code": ln.gl_code, "side": ln.side.value, "amount": format(ln.amount, "f")}
               for ln in lines], office_id=office_id, amount=entry.amount, by=by)


async def approve(conn: Conn, journal_id: uuid.UUID, by: str,
                  note: str | None) -> asyncpg.Record:
    """A second operator posts the journal: dated as proposed, so its period must still
    be open (else 409 and it stays proposed)."""
    row = await repo.journal(conn, journal_id, lock=True)
    if row is None:
        raise NotFound(f"no journal {journal_id}", field="id")
    if row["status"] != "proposed":
        raise Conflict(f"journal {journal_id} is already {row['status']}", field="status")
    rules.check_approver(row["proposed_by"], by)
    lines = [rules.JournalLine(ln["gl_code"], Side(ln["side"]), Decimal(ln["amount"]))
             for ln in row["lines"]]
    entry = rules.journal_entry(str(journal_id), row["business_date"], lines,
                                await gl_repo.chart(conn), row["reason"], row["office_id"])
    await _open(conn, row["business_date"])
    posted = await ledger_repo.post(conn, entry)
    return await repo.decide(conn, journal_id, "approved", by, note, posted.transfer_id)


async def reject(conn: Conn, journal_id: uuid.UUID, by: str, note: str | None
                 ) -> asyncpg.Record:
    row = await repo.journal(conn, journal_id, lock=True)
    if row is None:
        raise NotFound(f"no journal {journal_id}", field="id")
    if row["status"] != "proposed":
        raise Conflict(f"journal {journal_id} is already {row['status']}", field="status")
    return await repo.decide(conn, journal_id, "rejected", by, note, None)


async def close_period(conn: Conn, period: str, by: str, today: dt.date
                       ) -> tuple[asyncpg.Record, bool]:
    starts, ends = rules.period_bounds(period)
    if ends >= today:
        raise Conflict(f"period {period} is not over (business date {today})",
                       field="period")
    await _accruals_posted(conn, ends, "period")
    return await repo.close_period(conn, period, starts, ends, by)


async def _accruals_posted(conn: Conn, until: dt.date, field: str) -> None:
    """Refuse to close books whose accruals are still being posted: a night's batches
    staged from loans' close of business and not all accrued and provisioned yet."""
    pending = await accrual_batches_repo.pending_dates(conn, until)
    if pending:
        raise Conflict(f"the accruals of {pending[0].isoformat()} are still being posted "
                       f"({len(pending)} business date(s) up to {until.isoformat()} not "
                       "complete); close once they are", field=field)


async def close_year(conn: Conn, year: int, by: str, today: dt.date) -> dict[str, Any]:
    """Move every income and expense balance of the year to retained earnings (one
    entry per office, dated 31 December), then close the year's twelve months."""
    done = await repo.year_end(conn, year)
    if done is not None:
        return {**dict(done), "created": False}
    last = dt.date(year, 12, 31)
    if last >= today:
        raise Conflict(f"year {year} is not over (business date {today})", field="year")
    await _accruals_posted(conn, last, "year")
    await _open(conn, last)
    chart = await gl_repo.chart(conn)
    net_total = ZERO
    for office, totals in sorted((await statements_repo.result_by_office(conn, last)).items(),
                                 key=lambda kv: kv[0] or ""):
        lines: list[Line] = []
        net = ZERO
        for code, t in sorted(totals.items()):
            gl_type = chart[code].type
            amount = balance(gl_type, t)
            if amount == 0:
                continue
            # empty the account: the opposite of its balance
            side = gl_type.normal.other if amount > 0 else gl_type.normal
            lines.append(Line(acc.gl(code), side, abs(amount)))
            net += amount if gl_type is GLType.INCOME else -amount
        if net > 0:
            lines.append(Line(acc.RETAINED_EARNINGS, Side.CREDIT, net))
        elif net < 0:
            lines.append(Line(acc.RETAINED_EARNINGS, Side.DEBIT, -net))
        if len(lines) < 2:
            continue
        validate(lines)
        await ledger_repo.post(conn, Entry(
            f"year_end_close:{year}:{office or '-'}", "year_end_close", tuple(lines),
            memo=f"year-end close {year}", business_date=last, office_id=office))
        net_total += net
    for month in range(1, 13):
        period = f"{year:04d}-{month:02d}"
        starts, ends = rules.period_bounds(period)
        await repo.close_period(conn, period, starts, ends, by)
    await repo.record_year_end(conn, year, f"year_end_close:{year}", net_total, by)
    row = await repo.year_end(conn, year)
    assert row is not None
    return {**dict(row), "created": True}

