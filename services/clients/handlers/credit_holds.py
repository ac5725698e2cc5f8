"""Lifting the credit hold a written-off loan set: one operator proposes (with a reason),
another approves. The approval lifts the holds that were active when it was proposed;
a loan written off since holds the client again until its own lift."""

from __future__ import annotations

import uuid

import asyncpg

from services.clients.handlers import clients as clients_handlers
from services.clients.repository import behaviour as repo
from services.clients.repository import credit as credit_repo
from services.clients.repository.behaviour import HoldLift
from shared.auth import Principal
from shared.errors import Conflict, Forbidden, InvalidInput
from shared.uow import UnitOfWork


async def propose_lift(uow: UnitOfWork, principal: Principal, client_id: str, reason: str
                       ) -> HoldLift:
    clean = " ".join(reason.split())
    if not clean:
        raise InvalidInput("lifting a credit hold needs a reason", field="reason")
    client = await clients_handlers.get(uow, principal, client_id)
    await credit_repo.get_account(uow.conn, client.id, for_update=True)
    active = await repo.holds(uow.conn, client.id, active_only=True)
    if not active:
        raise Conflict("the client has no credit hold to lift", field="id")
    if await repo.pending_lift(uow.conn, client.id) is not None:
        raise Conflict("a lift of this client's credit hold is already awaiting approval",
                       field="id")
    try:
        async with uow.conn.transaction():
            return await repo.insert_lift(
                uow.conn, lift_id=str(uuid.uuid4()), client_id=client.id,
                loan_ids=[h.loan_id for h in active], reason=clean,
                requested_by=principal.sub)
    except asyncpg.UniqueViolationError:
        raise Conflict("a lift of this client's credit hold is already awaiting approval",
                       field="id") from None


async def approve_lift(uow: UnitOfWork, principal: Principal, client_id: str) -> HoldLift:
    client = await clients_handlers.get(uow, principal, client_id)
    # The lock ReserveCredit takes: a reservation sees the hold either before or after.
    await credit_repo.get_account(uow.conn, client.id, for_update=True)
    lift = await repo.pending_lift(uow.conn, client.id, for_update=True)
    if lift is None:
        raise Conflict("no lift of this client's credit hold is awaiting approval",
                       field="id")
    if lift.requested_by == principal.sub:
        raise Forbidden("maker-checker: the operator who proposed lifting the hold cannot "
                        "also approve it; another operator must", field="requested_by")
    await repo.lift_holds(uow.conn, client.id, lift.loan_ids, lift.id)
    return await repo.approve_lift(uow.conn, lift.id, principal.sub)
