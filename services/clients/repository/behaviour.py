"""Loans' behaviour as clients knows it, credit holds and their lifting, and each closed
cycle's limit decision."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from services.clients.domain.behaviour import LoanBehaviour
from services.clients.repository import Conn

_COLUMNS = ("loan_id, client_id, in_arrears, days_in_arrears, worst_days, bucket,"
            " amount_overdue, as_of, as_of_at, ended")


async def get_loan(conn: Conn, loan_id: str, client_id: str) -> LoanBehaviour:
    """The loan's state, locked; a loan never heard of starts current."""
    await conn.execute(
        "INSERT INTO loan_behaviour (loan_id, client_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING", loan_id, client_id)
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM loan_behaviour WHERE loan_id = $1 FOR UPDATE", loan_id)
    assert row is not None
    return LoanBehaviour(**dict(row))


async def save_loan(conn: Conn, b: LoanBehaviour) -> None:
    await conn.execute(
        "UPDATE loan_behaviour SET in_arrears = $2, days_in_arrears = $3, worst_days = $4,"
        " bucket = $5, amount_overdue = $6, as_of = $7, as_of_at = $8, ended = $9,"
        " updated_at = now() WHERE loan_id = $1",
        b.loan_id, b.in_arrears, b.days_in_arrears, b.worst_days, b.bucket,
        b.amount_overdue, b.as_of, b.as_of_at, b.ended)


async def loans_in_arrears(conn: Conn, client_id: str) -> list[LoanBehaviour]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM loan_behaviour WHERE client_id = $1 AND in_arrears"
        " AND ended IS NULL ORDER BY loan_id", client_id)
    return [LoanBehaviour(**dict(r)) for r in rows]


async def worst_days(conn: Conn, loan_id: str) -> int:
    value = await conn.fetchval(
        "SELECT worst_days FROM loan_behaviour WHERE loan_id = $1", loan_id)
    return int(value or 0)


# --- holds ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Hold:
    loan_id: str
    client_id: str
    reason: str
    status: str
    written_off_by: str | None
    placed_at: dt.datetime
    lift_id: str | None
    lifted_at: dt.datetime | None


_HOLD_COLUMNS = ("loan_id, client_id, reason, status, written_off_by, placed_at, lift_id,"
                 " lifted_at")


async def place_hold(conn: Conn, *, loan_id: str, client_id: str, written_off_by: str
                     ) -> bool:
    """A hold for the written-off loan; False when the loan already had one (even
    lifted: a replayed write-off does not hold the client again)."""
    tag = await conn.execute(
        "INSERT INTO credit_holds (loan_id, client_id, reason, written_off_by)"
        " VALUES ($1, $2, 'written_off_loan', $3) ON CONFLICT DO NOTHING",
        loan_id, client_id, written_off_by)
    return tag.endswith(" 1")


async def holds(conn: Conn, client_id: str, *, active_only: bool = False) -> list[Hold]:
    only = " AND status = 'active'" if active_only else ""
    rows = await conn.fetch(
        f"SELECT {_HOLD_COLUMNS} FROM credit_holds WHERE client_id = $1{only}"
        " ORDER BY placed_at, loan_id", client_id)
    return [Hold(**dict(r)) for r in rows]


async def lift_holds(conn: Conn, client_id: str, loan_ids: list[str], lift_id: str) -> int:
    tag = await conn.execute(
        "UPDATE credit_holds SET status = 'lifted', lift_id = $3, lifted_at = now()"
        " WHERE client_id = $1 AND loan_id = ANY($2::text[]) AND status = 'active'",
        client_id, loan_ids, lift_id)
    return int(tag.rsplit(" ", 1)[-1])


@dataclass(frozen=True)
class HoldLift:
    id: str
    client_id: str
    status: str
    loan_ids: list[str]
    reason: str
    requested_by: str
    requested_at: dt.datetime
    approved_by: str | None
    approved_at: dt.datetime | None


_LIFT_COLUMNS = ("id, client_id, status, loan_ids, reason, requested_by, requested_at,"
                 " approved_by, approved_at")


def _lift(row: object) -> HoldLift:
    data = dict(row)  # type: ignore[call-overload]
    data["loan_ids"] = list(data["loan_ids"])
    return HoldLift(**data)


async def insert_lift(conn: Conn, *, lift_id: str, client_id: str, loan_ids: list[str],
                      reason: str, requested_by: str) -> HoldLift:
    row = await conn.fetchrow(
        "INSERT INTO credit_hold_lifts (id, client_id, loan_ids, reason, requested_by)"
        f" VALUES ($1, $2, $3, $4, $5) RETURNING {_LIFT_COLUMNS}",
        lift_id, client_id, loan_ids, reason, requested_by)
    return _lift(row)


async def pending_lift(conn: Conn, client_id: str, *, for_update: bool = False
                       ) -> HoldLift | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_LIFT_COLUMNS} FROM credit_hold_lifts WHERE client_id = $1"
        f" AND status = 'pending'{lock}", client_id)
    return _lift(row) if row else None


async def approve_lift(conn: Conn, lift_id: str, approved_by: str) -> HoldLift:
    row = await conn.fetchrow(
        "UPDATE credit_hold_lifts SET status = 'approved', approved_by = $2,"
        f" approved_at = now() WHERE id = $1 RETURNING {_LIFT_COLUMNS}", lift_id, approved_by)
    return _lift(row)


# --- cycles ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CycleDecision:
    loan_id: str
    client_id: str
    closed_on: dt.date
    worst_days: int
    move: str
    previous_limit: Decimal
    credit_limit: Decimal
    previous_cycle: int
    cycle: int
    decided_at: dt.datetime | None = None


async def record_cycle(conn: Conn, d: CycleDecision) -> None:
    await conn.execute(
        "INSERT INTO credit_cycles (loan_id, client_id, closed_on, worst_days, move,"
        " previous_limit, credit_limit, previous_cycle, cycle)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        d.loan_id, d.client_id, d.closed_on, d.worst_days, d.move, d.previous_limit,
        d.credit_limit, d.previous_cycle, d.cycle)


async def last_cycle(conn: Conn, client_id: str) -> CycleDecision | None:
    row = await conn.fetchrow(
        "SELECT loan_id, client_id, closed_on, worst_days, move, previous_limit,"
        " credit_limit, previous_cycle, cycle, decided_at FROM credit_cycles"
        " WHERE client_id = $1 ORDER BY decided_at DESC, loan_id DESC LIMIT 1", client_id)
    return CycleDecision(**dict(row)) if row else None
