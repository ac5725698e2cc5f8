"""The saga table and its timeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import asyncpg

from services.loans.domain.loan import Loan
from services.loans.domain.saga import SAGA_TYPE, SagaState, SagaStatus, Step
from services.loans.domain.schedule import PlannedInstallment
from services.loans.repository import Conn
from services.loans.repository.loans import _LOAN_COLS, _loan, loans_save_sql

UNFINISHED = (SagaStatus.RESERVING_CREDIT, SagaStatus.VALIDATING_PAYEES,
              SagaStatus.HOLDING_SAVINGS, SagaStatus.DISBURSING, SagaStatus.COMPENSATING,
              SagaStatus.IN_DOUBT, SagaStatus.FAILED)
"""What the ``noria_sagas`` gauge counts: every saga not ended."""

_COLS = ("id, type, loan_id, state, current_step, deadline, compensating, failed, attempts,"
         " data, version, created_at, updated_at")


def _data(s: SagaState) -> dict[str, Any]:
    return {
        "client_id": s.client_id, "partner_id": s.partner_id, "amount": str(s.amount),
        "currency": s.currency, "msisdn": s.msisdn, "language": s.language,
        "payout_deadline": s.payout_deadline.isoformat() if s.payout_deadline else None,
        "reason": s.reason, "provider_reference": s.provider_reference,
        "in_doubt_since": s.in_doubt_since.isoformat() if s.in_doubt_since else None,
        "savings_required": _str(s.savings_required),
        "savings_requested": s.savings_requested, "savings_held": _str(s.savings_held),
        "savings_shortfall": _str(s.savings_shortfall),
        "savings_deadline": s.savings_deadline.isoformat() if s.savings_deadline else None,
        "credit_released": s.credit_released, "savings_released": s.savings_released,
    }


def _str(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def _dec(v: str | None) -> Decimal | None:
    return None if v is None else Decimal(v)


def _state(r: asyncpg.Record) -> SagaState:
    d = r["data"]
    return SagaState(
        id=r["id"], loan_id=r["loan_id"], client_id=d["client_id"], partner_id=d["partner_id"],
        amount=Decimal(d["amount"]), currency=d.get("currency", "MAD"),
        state=SagaStatus(r["state"]), step=Step(r["current_step"]), deadline=r["deadline"],
        compensating=r["compensating"], failed=r["failed"], attempts=r["attempts"],
        msisdn=d.get("msisdn"), language=d.get("language"),
        payout_deadline=(datetime.fromisoformat(d["payout_deadline"])
                         if d.get("payout_deadline") else None),
        reason=d.get("reason"), provider_reference=d.get("provider_reference"),
        in_doubt_since=(datetime.fromisoformat(d["in_doubt_since"])
                        if d.get("in_doubt_since") else None),
        savings_required=_dec(d.get("savings_required")),
        savings_requested=bool(d.get("savings_requested", False)),
        savings_held=_dec(d.get("savings_held")),
        savings_shortfall=_dec(d.get("savings_shortfall")),
        savings_deadline=(datetime.fromisoformat(d["savings_deadline"])
                          if d.get("savings_deadline") else None),
        credit_released=bool(d.get("credit_released", False)),
        savings_released=bool(d.get("savings_released", False)),
    )


async def get(conn: Conn, saga_id: str, *, for_update: bool = False
              ) -> SagaState | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_COLS} FROM sagas WHERE id = $1 AND type = '{SAGA_TYPE}'{lock}", saga_id)
    return None if row is None else _state(row)


async def add_timeline(conn: Conn, saga_id: str, event: str,
                       from_state: str | None, to_state: str, detail: str = "") -> None:
    await conn.execute(
        "INSERT INTO saga_timeline (saga_id, event, from_state, to_state, detail)"
        " VALUES ($1, $2, $3, $4, $5)", saga_id, event, from_state, to_state, detail)


_TIMELINE_INSERT = "INSERT INTO saga_timeline (saga_id, event, from_state, to_state, detail)"


async def write_step(conn: Conn, s: SagaState, event: str, detail: str, *,
                     from_state: str | None, new: bool, changed: bool,
                     loan: Loan | None = None,
                     due_dates: Sequence[PlannedInstallment] | None = None) -> None:
    """One step of a saga in one statement: the saga row (inserted when ``new``, updated
    when ``changed``), its timeline row, and what the step changed of its loan — the loan
    row (as ``loans.save``: its version checked and bumped) and the installments' due
    dates. The saga and loan rows are already locked by this transaction."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    parts: list[str] = []
    saga_id = arg(s.id)
    if new or changed:
        cols = (arg(s.state.value), arg(s.step.value), arg(s.deadline), arg(s.compensating),
                arg(s.failed), arg(s.attempts), arg(_data(s)))
        if new:
            parts.append(
                "s AS (INSERT INTO sagas (id, type, loan_id, state, current_step, deadline,"
                " compensating, failed, attempts, data) VALUES"
                f" ({saga_id}, {arg(SAGA_TYPE)}, {arg(s.loan_id)}, {', '.join(cols)})"
                " RETURNING id)")
        else:
            state, step, deadline, compensating, failed, attempts, data = cols
            parts.append(
                f"s AS (UPDATE sagas SET state = {state}, current_step = {step},"
                f" deadline = {deadline}, compensating = {compensating}, failed = {failed},"
                f" attempts = {attempts}, data = {data}, version = version + 1,"
                f" updated_at = now() WHERE id = {saga_id} RETURNING id)")
        source = "FROM s"
    else:
        source = ""
    parts.append(
        f"t AS ({_TIMELINE_INSERT} SELECT {saga_id}, {arg(event)}, {arg(from_state)}::text,"
        f" {arg(s.state.value)}, {arg(detail)} {source})")
    if due_dates:
        parts.append(
            f"d AS (UPDATE installments i SET due_date = d.due_date FROM"
            f" unnest({arg([p.number for p in due_dates])}::int[],"
            f" {arg([p.due_date for p in due_dates])}::date[]) AS d(number, due_date)"
            f" WHERE i.loan_id = {arg(s.loan_id)}"
            " AND i.number = d.number)")
    if loan is not None:
        parts.append(f"l AS ({loans_save_sql(loan, arg)})")
    version = await conn.fetchval(
        f"WITH {', '.join(parts)} SELECT "
        + ("(SELECT version FROM l)" if loan is not None else "NULL::int"), *args)
    if loan is not None:
        if version is None:
            raise RuntimeError(f"loan {loan.id} changed concurrently (version {loan.version})")
        loan.version = version


_LOAN_NAMES = [c.strip() for c in _LOAN_COLS.split(",")]
_S_COLS = ", ".join(f"s.{c.strip()}" for c in _COLS.split(","))
_L_AS = ", ".join(f"l.{c} AS l_{c}" for c in _LOAN_NAMES)


@dataclass(frozen=True)
class SagaWithLoan:
    state: SagaState
    loan: Loan
    office_id: str | None
    """The office the loan is booked to (None: not yet known to loans)."""
    product_stamp: datetime | None
    """When the loan's product version was stored (``products.version_terms``' key)."""


async def lock_with_loan(conn: Conn, saga_id: str) -> SagaWithLoan | None:
    """The saga and its loan, both row-locked, with the loan's office and its product
    version's stamp: one statement.

    Every reply to the disbursement saga reads the saga and, when it decides something,
    the loan under lock (saga first, as before); both are locked here at once."""
    row = await conn.fetchrow(
        f"SELECT {_S_COLS}, {_L_AS}, l.office_id AS l_office_id,"
        " (SELECT p.created_at FROM products p WHERE p.id = l.product_id"
        "  AND p.version = l.product_version) AS product_stamp FROM sagas s"
        f" JOIN loans l ON l.id = s.loan_id WHERE s.id = $1 AND s.type = '{SAGA_TYPE}'"
        " FOR UPDATE OF s, l", saga_id)
    if row is None:
        return None
    loan = _loan({c: row[f"l_{c}"] for c in _LOAN_NAMES})
    return SagaWithLoan(_state(row), loan, row["l_office_id"], row["product_stamp"])


async def update_with_timeline(conn: Conn, s: SagaState, event: str, from_state: str,
                               detail: str) -> None:
    """Write the saga's new state and its timeline row in one statement (the saga row is
    already locked by this transaction)."""
    await conn.execute(
        "WITH s AS (UPDATE sagas SET state = $2, current_step = $3, deadline = $4,"
        " compensating = $5, failed = $6, attempts = $7, data = $8, version = version + 1,"
        " updated_at = now() WHERE id = $1 RETURNING id)"
        f" {_TIMELINE_INSERT} SELECT s.id, $9, $10, $2, $11 FROM s",
        s.id, s.state.value, s.step.value, s.deadline, s.compensating, s.failed, s.attempts,
        _data(s), event, from_state, detail)


async def past_deadline(conn: Conn, now: datetime, limit: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM sagas WHERE deadline IS NOT NULL AND deadline <= $1"
        " ORDER BY deadline LIMIT $2", now, limit)
    # every type of saga (the sweeper dispatches by type: ``handlers.group_saga``)
    return [r["id"] for r in rows]


def to_json(r: asyncpg.Record, now: datetime) -> dict[str, Any]:
    d = dict(r["data"])
    since = (datetime.fromisoformat(d["in_doubt_since"])
             if r["state"] == SagaStatus.IN_DOUBT.value and d.get("in_doubt_since") else None)
    return {
        "id": r["id"], "type": r["type"], "loan_id": r["loan_id"], "state": r["state"],
        "current_step": r["current_step"],
        "deadline": r["deadline"].isoformat() if r["deadline"] else None,
        "compensating": r["compensating"], "failed": r["failed"], "attempts": r["attempts"],
        "data": d, "created_at": r["created_at"].isoformat(),
        "updated_at": r["updated_at"].isoformat(),
        "in_doubt_since": since.isoformat() if since else None,
        "age_s": round(max(0.0, (now - since).total_seconds()), 3) if since else None,
    }


class SagaOrder(StrEnum):
    RECENT = "recent"
    """Most recently changed first: (updated_at, id) descending."""
    OLDEST = "oldest"
    """Oldest first: (created_at, id) ascending."""


@dataclass(frozen=True)
class SagaCursor:
    """Where a page ended: the last row's sort time and id, in the listing's order."""

    order: SagaOrder
    at: datetime
    id: str


@dataclass(frozen=True)
class SagaListing:
    items: list[dict[str, Any]]
    next: SagaCursor | None


def _office_scope(n: int) -> str:
    """The saga's loan (or group loan) is booked to office path ``$n`` or below it (NULL:
    every office; a saga whose loan is unknown belongs to no office)."""
    path = ("coalesce((SELECT l.office_path FROM loans l WHERE l.id = sagas.loan_id),"
            " (SELECT g.office_path FROM group_loans g WHERE g.id = sagas.loan_id))")
    return (f"(${n}::text IS NULL OR {path} = ${n}"
            f" OR starts_with({path}, ${n} || '/'))")


async def list_sagas(conn: Conn, state: str | None, loan_id: str | None, limit: int, *,
                     order: SagaOrder = SagaOrder.RECENT, after: SagaCursor | None = None,
                     office_path: str | None = None) -> SagaListing:
    """One page in ``order``; ``next`` is set only when another row follows. With
    ``office_path``, only the sagas of loans booked to that office's subtree."""
    if order is SagaOrder.RECENT:
        column, keyset, direction = "updated_at", "(updated_at, id) < ($4, $5)", "DESC"
    else:
        column, keyset, direction = "created_at", "(created_at, id) > ($4, $5)", "ASC"
    rows = await conn.fetch(
        f"SELECT {_COLS}, now() AS now FROM sagas WHERE ($1::text IS NULL OR state = $1)"
        " AND ($2::text IS NULL OR loan_id = $2)"
        f" AND ($4::timestamptz IS NULL OR {keyset}) AND {_office_scope(6)}"
        f" ORDER BY {column} {direction}, id {direction} LIMIT $3",
        state, loan_id, limit + 1, after.at if after else None, after.id if after else None,
        office_path)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [to_json(r, r["now"]) for r in rows]
    last = rows[-1] if more else None
    return SagaListing(items, None if last is None
                       else SagaCursor(order, last[column], last["id"]))


async def detail(conn: Conn, saga_id: str, *, office_path: str | None = None
                 ) -> dict[str, Any] | None:
    """The saga and its timeline; None when unknown or outside ``office_path``."""
    row = await conn.fetchrow(
        f"SELECT {_COLS}, now() AS now FROM sagas WHERE id = $1 AND {_office_scope(2)}",
        saga_id, office_path)
    if row is None:
        return None
    timeline = await conn.fetch(
        "SELECT at, event, from_state, to_state, detail FROM saga_timeline WHERE saga_id = $1"
        " ORDER BY id", saga_id)
    return {**to_json(row, row["now"]), "timeline": [
        {"at": t["at"].isoformat(), "event": t["event"], "from_state": t["from_state"],
         "to_state": t["to_state"], "detail": t["detail"]} for t in timeline]}


async def counts_by_state(conn: Conn, *, office_path: str | None = None) -> dict[str, int]:
    rows = await conn.fetch(
        f"SELECT state, count(*) AS n FROM sagas WHERE {_office_scope(1)} GROUP BY state",
        office_path)
    return {r["state"]: r["n"] for r in rows}


async def counts_unfinished(conn: Conn) -> dict[str, int]:
    """In-flight, in-doubt and failed sagas by state (cheap: the ended ones are not
    counted)."""
    rows = await conn.fetch(
        "SELECT state, count(*) AS n FROM sagas WHERE state = ANY($1::text[]) GROUP BY state",
        [s.value for s in UNFINISHED])
    return {r["state"]: r["n"] for r in rows}


async def oldest_in_doubt_since(conn: Conn) -> datetime | None:
    """When the longest-standing saga in doubt entered doubt (None: none is)."""
    value = await conn.fetchval(
        "SELECT min((data->>'in_doubt_since')::timestamptz) FROM sagas WHERE state = $1",
        SagaStatus.IN_DOUBT.value)
    return value  # type: ignore[no-any-return]
