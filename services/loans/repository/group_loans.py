"""Group loans, their members, the group saga (a ``sagas`` row of type
``group_disbursement``) and its legs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from services.loans.domain import group_saga as gs
from services.loans.domain.saga import SagaStatus, Step
from services.loans.repository import Conn

_GL = ("id, group_id, partner_id, product_id, status, cover_arrears, arrears_tolerance_days,"
       " submitted_by, decided_by, saga_id, in_arrears, office_id, office_path, created_at")


async def insert(conn: Conn, *, group_loan_id: str, group_id: str, partner_id: str,
                 product_id: str, cover_arrears: bool, tolerance: int, submitted_by: str,
                 office_id: str, office_path: str) -> None:
    try:
        await conn.execute(
            "INSERT INTO group_loans (id, group_id, partner_id, product_id, status,"
            " cover_arrears, arrears_tolerance_days, submitted_by, office_id, office_path)"
            " VALUES ($1, $2, $3, $4, 'submitted', $5, $6, $7, $8, $9)",
            group_loan_id, group_id, partner_id, product_id, cover_arrears, tolerance,
            submitted_by, office_id, office_path)
    except asyncpg.UniqueViolationError:
        raise LiveGroupLoan(group_id) from None


class LiveGroupLoan(Exception):
    def __init__(self, group_id: str) -> None:
        super().__init__(f"group {group_id} already has a live group loan")
        self.group_id = group_id


async def add_member(conn: Conn, group_loan_id: str, loan_id: str, client_id: str,
                     position: int) -> None:
    await conn.execute(
        "INSERT INTO group_loan_members (group_loan_id, loan_id, client_id, position)"
        " VALUES ($1, $2, $3, $4)", group_loan_id, loan_id, client_id, position)


async def get(conn: Conn, group_loan_id: str, *, for_update: bool = False
              ) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_GL} FROM group_loans WHERE id = $1{lock}", group_loan_id)
    return row


async def members(conn: Conn, group_loan_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT m.loan_id, m.client_id, m.position, l.status, l.principal,"
        " l.principal_outstanding, l.days_in_arrears, l.max_days_in_arrears"
        " FROM group_loan_members m JOIN loans l ON l.id = m.loan_id"
        " WHERE m.group_loan_id = $1 ORDER BY m.position", group_loan_id)
    return rows


async def reference_kind(conn: Conn, ref: str, short: str | None
                         ) -> tuple[bool, str | None]:
    """For a repayment's reference, in one read: whether it names a group loan, and the
    group loan whose member loan it names (None when it names none). ``short``: the
    reference as a valid short one (``L…``), which names the loan that carries it."""
    row = await conn.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM group_loans WHERE id = $1) AS is_group,"
        " (SELECT group_loan_id FROM group_loan_members WHERE loan_id ="
        "   COALESCE((SELECT id FROM loans WHERE reference = $2), $1)) AS member_of",
        ref, short)
    return (False, None) if row is None else (bool(row["is_group"]), row["member_of"])


async def group_loan_of(conn: Conn, loan_id: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT group_loan_id FROM group_loan_members WHERE loan_id = $1", loan_id)
    return value


async def set_status(conn: Conn, group_loan_id: str, status: str, *,
                     decided_by: str | None = None, saga_id: str | None = None) -> None:
    await conn.execute(
        "UPDATE group_loans SET status = $2, decided_by = COALESCE($3, decided_by),"
        " saga_id = COALESCE($4, saga_id), updated_at = now() WHERE id = $1",
        group_loan_id, status, decided_by, saga_id)


async def set_in_arrears(conn: Conn, group_loan_id: str, flag: bool) -> None:
    await conn.execute("UPDATE group_loans SET in_arrears = $2, updated_at = now()"
                       " WHERE id = $1", group_loan_id, flag)


async def closed_cycles(conn: Conn, group_id: str) -> int:
    """Earlier group loans of the group closed within their tolerance."""
    n: int = await conn.fetchval(
        "SELECT count(*) FROM group_loans WHERE group_id = $1 AND status = 'closed'"
        " AND NOT in_arrears", group_id)
    return n


# -- the saga ------------------------------------------------------------------------
def _data(s: gs.GroupSagaState) -> dict[str, Any]:
    return {
        "client_id": s.legs[0].client_id if s.legs else "", "partner_id": s.partner_id,
        "amount": str(s.amount), "currency": s.currency, "group_loan_id": s.group_loan_id,
        "payout_deadline": s.payout_deadline.isoformat() if s.payout_deadline else None,
        "reason": s.reason, "rejected": s.rejected,
        "in_doubt_since": s.in_doubt_since.isoformat() if s.in_doubt_since else None,
        "legs": [{
            "leg_id": g.leg_id, "loan_id": g.loan_id, "client_id": g.client_id,
            "amount": str(g.amount), "credit": g.credit.value, "payout": g.payout.value,
            "payee": g.payee.value,
            "release_sent": g.release_sent, "msisdn": g.msisdn, "language": g.language,
            "completed_on": g.completed_on.isoformat() if g.completed_on else None,
            "provider_reference": g.provider_reference, "reason": g.reason,
            "to_recover": g.to_recover} for g in s.legs],
    }


def _state(r: asyncpg.Record) -> gs.GroupSagaState:
    d = r["data"]
    return gs.GroupSagaState(
        id=r["id"], group_loan_id=d["group_loan_id"], partner_id=d["partner_id"],
        state=SagaStatus(r["state"]), step=Step(r["current_step"]), deadline=r["deadline"],
        currency=d.get("currency", "MAD"), attempts=r["attempts"],
        compensating=r["compensating"], failed=r["failed"],
        payout_deadline=(datetime.fromisoformat(d["payout_deadline"])
                         if d.get("payout_deadline") else None),
        reason=d.get("reason"), rejected=bool(d.get("rejected")),
        in_doubt_since=(datetime.fromisoformat(d["in_doubt_since"])
                        if d.get("in_doubt_since") else None),
        legs=tuple(gs.Leg(
            leg_id=g["leg_id"], loan_id=g["loan_id"], client_id=g["client_id"],
            amount=Decimal(g["amount"]), credit=gs.Credit(g["credit"]),
            payout=gs.Payout(g["payout"]), release_sent=g["release_sent"],
            # a saga started before payee validation existed went straight to its payouts
            payee=gs.Payee(g.get("payee") or ("confirmed" if g["payout"] != "not_sent"
                                               else "pending")),
            msisdn=g.get("msisdn"), language=g.get("language"),
            completed_on=date.fromisoformat(g["completed_on"]) if g.get("completed_on")
            else None, provider_reference=g.get("provider_reference"),
            reason=g.get("reason"), to_recover=bool(g.get("to_recover")))
            for g in d["legs"]))


async def insert_saga(conn: Conn, s: gs.GroupSagaState) -> None:
    await conn.execute(
        "INSERT INTO sagas (id, type, loan_id, state, current_step, deadline, compensating,"
        " failed, attempts, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        s.id, gs.SAGA_TYPE, s.group_loan_id, s.state.value, s.step.value, s.deadline,
        s.compensating, s.failed, s.attempts, _data(s))
    await conn.executemany(
        "INSERT INTO group_saga_legs (leg_id, saga_id, loan_id) VALUES ($1, $2, $3)",
        [(g.leg_id, s.id, g.loan_id) for g in s.legs])


async def update_saga(conn: Conn, s: gs.GroupSagaState) -> None:
    await conn.execute(
        "UPDATE sagas SET state = $2, current_step = $3, deadline = $4, compensating = $5,"
        " failed = $6, attempts = $7, data = $8, version = version + 1, updated_at = now()"
        " WHERE id = $1", s.id, s.state.value, s.step.value, s.deadline, s.compensating,
        s.failed, s.attempts, _data(s))


async def saga_of_leg(conn: Conn, leg_id: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT saga_id FROM group_saga_legs WHERE leg_id = $1", leg_id)
    return value


async def get_saga(conn: Conn, saga_id: str, *, for_update: bool = False
                   ) -> gs.GroupSagaState | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        "SELECT id, state, current_step, deadline, compensating, failed, attempts, data"
        f" FROM sagas WHERE id = $1 AND type = '{gs.SAGA_TYPE}'{lock}", saga_id)
    return None if row is None else _state(row)


async def live_with_members(conn: Conn) -> list[asyncpg.Record]:
    """Active group loans with, per member loan, its status and days in arrears."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT g.id, g.group_id, g.in_arrears, g.arrears_tolerance_days,"
        " array_agg(m.client_id ORDER BY m.position) AS member_ids,"
        " array_agg(m.loan_id ORDER BY m.position) FILTER"
        "   (WHERE l.status = 'active' AND l.days_in_arrears > 0) AS late,"
        " bool_and(l.status IN ('closed', 'written_off')) AS ended,"
        " max(COALESCE(l.max_days_in_arrears, 0)) AS worst"
        " FROM group_loans g JOIN group_loan_members m ON m.group_loan_id = g.id"
        " JOIN loans l ON l.id = m.loan_id WHERE g.status = 'active' GROUP BY g.id")
    return rows
