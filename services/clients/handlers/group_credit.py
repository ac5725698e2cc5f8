"""Joint liability from ``loans.events``: a group's live group loans and its arrears.

``GroupLoanActive`` makes a group loan live: the group cannot be dissolved and no member
can be removed while it is. ``GroupLoanClosed`` (every member's loan closed or written
off) or ``GroupLoanDisbursementFailed`` (the saga compensated) ends it. The projection
keeps one row per group loan (``group_loans_live``), so a redelivered fact changes
nothing twice and an end heard before its start stays ended. ``GroupInArrears`` refuses
new credit to every member of the group until ``GroupArrearsCured``."""

from __future__ import annotations

import logging

from services.clients.repository import groups as repo
from shared.contracts.loans import (
    GroupArrearsCured,
    GroupInArrears,
    GroupLoanActive,
    GroupLoanClosed,
    GroupLoanDisbursementFailed,
)
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.clients.groups")


async def on_group_loan_active(uow: UnitOfWork, evt: GroupLoanActive,
                               env: Envelope | None = None) -> None:
    # the group's row first: a dissolution or a member's removal deciding on the same
    # group waits for this fact, or this fact for it (never both on a stale read)
    await repo.lock(uow.conn, evt.group_id)
    if await repo.group_loan_live(uow.conn, group_id=evt.group_id,
                                  group_loan_id=evt.group_loan_id, loan_ids=evt.loan_ids,
                                  member_ids=evt.member_ids):
        log.info("group %s: group loan %s live (%d members)", evt.group_id,
                 evt.group_loan_id, len(evt.member_ids))


async def on_group_loan_ended(uow: UnitOfWork,
                              evt: GroupLoanClosed | GroupLoanDisbursementFailed,
                              env: Envelope | None = None) -> None:
    await repo.lock(uow.conn, evt.group_id)
    recover = (evt.payouts_to_recover if isinstance(evt, GroupLoanDisbursementFailed)
               else [])
    ended = await repo.group_loan_ended(
        uow.conn, group_id=evt.group_id, group_loan_id=evt.group_loan_id,
        ended_by=type(evt).__name__, member_ids=evt.member_ids, payouts_to_recover=recover)
    if ended and not await repo.live_group_loans(uow.conn, evt.group_id):
        # nothing of the group is live any more: no member can be in arrears on it
        await uow.conn.execute("UPDATE groups SET in_arrears = false WHERE id = $1",
                               evt.group_id)
    if ended:
        log.info("group %s: group loan %s ended (%s)", evt.group_id, evt.group_loan_id,
                 type(evt).__name__)


async def on_group_in_arrears(uow: UnitOfWork, evt: GroupInArrears,
                              env: Envelope | None = None) -> None:
    await uow.conn.execute("UPDATE groups SET in_arrears = true WHERE id = $1", evt.group_id)
    log.info("group %s in arrears (%s): no new credit for its members", evt.group_id,
             ", ".join(evt.loans_in_arrears))


async def on_group_arrears_cured(uow: UnitOfWork, evt: GroupArrearsCured,
                                 env: Envelope | None = None) -> None:
    await uow.conn.execute("UPDATE groups SET in_arrears = false WHERE id = $1", evt.group_id)


async def group_in_arrears(uow: UnitOfWork, client_id: str) -> str | None:
    """The client's active group, when it is in arrears (joint liability)."""
    value: str | None = await uow.conn.fetchval(
        "SELECT g.id FROM group_members m JOIN groups g ON g.id = m.group_id"
        " WHERE m.client_id = $1 AND m.active AND g.in_arrears", client_id)
    return value


async def live_group_loan(uow: UnitOfWork, group_id: str) -> str | None:
    """The group's live group loan (the oldest, if loans ever reports two), else None."""
    live = await repo.live_group_loans(uow.conn, group_id)
    return live[0] if live else None
