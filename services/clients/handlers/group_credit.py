"""Joint liability from ``loans.events``: a group's live group loan and its arrears.

``GroupLoanActive`` marks the group live (it cannot be dissolved, no member leaves) until
``GroupLoanClosed`` or ``GroupLoanDisbursementFailed``; ``GroupInArrears`` refuses new
credit to every member of the group until ``GroupArrearsCured``."""

from __future__ import annotations

import logging

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
    await uow.conn.execute("UPDATE groups SET live_group_loan_id = $2 WHERE id = $1",
                           evt.group_id, evt.group_loan_id)


async def on_group_loan_ended(uow: UnitOfWork,
                              evt: GroupLoanClosed | GroupLoanDisbursementFailed,
                              env: Envelope | None = None) -> None:
    await uow.conn.execute(
        "UPDATE groups SET live_group_loan_id = NULL, in_arrears = false"
        " WHERE id = $1 AND live_group_loan_id IS NOT DISTINCT FROM $2",
        evt.group_id, evt.group_loan_id)
    if isinstance(evt, GroupLoanDisbursementFailed):   # it never became live
        await uow.conn.execute(
            "UPDATE groups SET live_group_loan_id = NULL WHERE id = $1"
            " AND live_group_loan_id = $2", evt.group_id, evt.group_loan_id)


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
    value: str | None = await uow.conn.fetchval(
        "SELECT live_group_loan_id FROM groups WHERE id = $1", group_id)
    return value
