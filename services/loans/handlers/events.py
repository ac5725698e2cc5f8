"""Handlers for what other services publish: clients' events, saga replies, repayments."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.loans.domain import group_saga as gs
from services.loans.domain import saga as sg
from services.loans.handlers.group_loans import advance_leg
from services.loans.handlers.saga import advance, now_utc
from services.loans.repository import clients as clients_repo
from shared.contracts.clients import (
    ClientBlocked,
    ClientKycRejected,
    ClientKycVerified,
    ClientRegistered,
    ClientUnblocked,
    CreditRejected,
    CreditReleased,
    CreditReserved,
)
from shared.contracts.payments import (
    DisbursementCompleted,
    DisbursementFailed,
    DisbursementInDoubt,
    PayeeConfirmed,
    PayeeLookupInDoubt,
    PayeeRefused,
)
from shared.contracts.savings import (
    CompulsorySavingsHeld,
    CompulsorySavingsInsufficient,
    CompulsorySavingsReleased,
)
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.loans.events")

Handler = Callable[[UnitOfWork, Any, Envelope], Awaitable[None]]


# -- the clients projection ---------------------------------------------------------
async def on_client_registered(uow: UnitOfWork, msg: ClientRegistered, env: Envelope) -> None:
    await clients_repo.register(uow.conn, msg.client_id, msg.partner_id)


async def on_kyc_verified(uow: UnitOfWork, msg: ClientKycVerified, env: Envelope) -> None:
    await clients_repo.set_kyc(uow.conn, msg.client_id, "verified")


async def on_kyc_rejected(uow: UnitOfWork, msg: ClientKycRejected, env: Envelope) -> None:
    await clients_repo.set_kyc(uow.conn, msg.client_id, "rejected")


async def on_blocked(uow: UnitOfWork, msg: ClientBlocked, env: Envelope) -> None:
    await clients_repo.set_blocked(uow.conn, msg.client_id, True)


async def on_unblocked(uow: UnitOfWork, msg: ClientUnblocked, env: Envelope) -> None:
    await clients_repo.set_blocked(uow.conn, msg.client_id, False)


# -- saga replies -----------------------------------------------------------------------
def saga_handlers(policy: sg.SagaPolicy) -> dict[str, Handler]:
    async def on_credit_reserved(uow: UnitOfWork, msg: CreditReserved, env: Envelope) -> None:
        if await advance_leg(uow, msg.saga_id, gs.LegCreditReserved(
                msg.saga_id, now_utc(), msg.msisdn, msg.language), policy, "CreditReserved"):
            return
        await advance(uow, msg.saga_id, msg.loan_id,
                      sg.CreditReservedReply(now_utc(), msg.msisdn, msg.language),
                      policy, "CreditReserved")

    async def on_credit_rejected(uow: UnitOfWork, msg: CreditRejected, env: Envelope) -> None:
        if await advance_leg(uow, msg.saga_id, gs.LegCreditRejected(
                msg.saga_id, now_utc(), f"{msg.reason} {msg.detail}".strip()), policy,
                "CreditRejected"):
            return
        await advance(uow, msg.saga_id, msg.loan_id,
                      sg.CreditRejectedReply(now_utc(), msg.reason, msg.detail),
                      policy, "CreditRejected")

    async def on_credit_released(uow: UnitOfWork, msg: CreditReleased, env: Envelope) -> None:
        if await advance_leg(uow, msg.saga_id, gs.LegCreditReleased(msg.saga_id, now_utc()),
                             policy, "CreditReleased"):
            return
        await advance(uow, msg.saga_id, msg.loan_id, sg.CreditReleasedReply(now_utc()),
                      policy, "CreditReleased")

    async def on_completed(uow: UnitOfWork, msg: DisbursementCompleted, env: Envelope) -> None:
        if await advance_leg(uow, msg.saga_id, gs.LegPayoutCompleted(
                msg.saga_id, now_utc(), msg.completed_at, msg.provider_reference), policy,
                "DisbursementCompleted"):
            return
        await advance(uow, msg.saga_id, msg.loan_id,
                      sg.PayoutCompleted(now_utc(), msg.completed_at, msg.provider_reference),
                      policy, "DisbursementCompleted")

    async def on_failed(uow: UnitOfWork, msg: DisbursementFailed, env: Envelope) -> None:
        if await advance_leg(uow, msg.saga_id, gs.LegPayoutFailed(
                msg.saga_id, now_utc(), msg.reason), policy, "DisbursementFailed"):
            return
        await advance(uow, msg.saga_id, msg.loan_id, sg.PayoutFailed(now_utc(), msg.reason),
                      policy, "DisbursementFailed")

    async def on_in_doubt(uow: UnitOfWork, msg: DisbursementInDoubt, env: Envelope) -> None:
        if await advance_leg(uow, msg.saga_id, gs.LegPayoutInDoubt(
                msg.saga_id, now_utc(), msg.since, msg.reason), policy,
                "DisbursementInDoubt"):
            return
        await advance(uow, msg.saga_id, msg.loan_id,
                      sg.PayoutInDoubt(now_utc(), msg.since, msg.reason),
                      policy, "DisbursementInDoubt")

    async def on_payee_confirmed(uow: UnitOfWork, msg: PayeeConfirmed, env: Envelope
                                 ) -> None:
        await advance_leg(uow, msg.saga_id, gs.LegPayeeConfirmed(msg.saga_id, now_utc()),
                          policy, "PayeeConfirmed")

    async def on_payee_refused(uow: UnitOfWork, msg: PayeeRefused, env: Envelope) -> None:
        await advance_leg(uow, msg.saga_id, gs.LegPayeeRefused(
            msg.saga_id, now_utc(), msg.reason), policy, "PayeeRefused")

    async def on_payee_in_doubt(uow: UnitOfWork, msg: PayeeLookupInDoubt, env: Envelope
                                ) -> None:
        await advance_leg(uow, msg.saga_id, gs.LegPayeeInDoubt(
            msg.saga_id, now_utc(), msg.since, msg.reason), policy, "PayeeLookupInDoubt")

    async def on_savings_held(uow: UnitOfWork, msg: CompulsorySavingsHeld, env: Envelope
                              ) -> None:
        await advance(uow, msg.saga_id, msg.loan_id, sg.SavingsHeldReply(now_utc(), msg.held),
                      policy, "CompulsorySavingsHeld")

    async def on_savings_short(uow: UnitOfWork, msg: CompulsorySavingsInsufficient,
                               env: Envelope) -> None:
        await advance(uow, msg.saga_id, msg.loan_id,
                      sg.SavingsInsufficientReply(now_utc(), msg.shortfall, msg.reason),
                      policy, "CompulsorySavingsInsufficient")

    async def on_savings_released(uow: UnitOfWork, msg: CompulsorySavingsReleased,
                                  env: Envelope) -> None:
        await advance(uow, msg.saga_id, msg.loan_id, sg.SavingsReleasedReply(now_utc()),
                      policy, "CompulsorySavingsReleased")

    return {
        "CompulsorySavingsHeld": on_savings_held,
        "CompulsorySavingsInsufficient": on_savings_short,
        "CompulsorySavingsReleased": on_savings_released,
        "CreditReserved": on_credit_reserved,
        "CreditRejected": on_credit_rejected,
        "CreditReleased": on_credit_released,
        "DisbursementCompleted": on_completed,
        "DisbursementFailed": on_failed,
        "DisbursementInDoubt": on_in_doubt,
        "PayeeConfirmed": on_payee_confirmed,
        "PayeeRefused": on_payee_refused,
        "PayeeLookupInDoubt": on_payee_in_doubt,
    }


PROJECTION_HANDLERS: dict[str, Handler] = {
    "ClientRegistered": on_client_registered,
    "ClientKycVerified": on_kyc_verified,
    "ClientKycRejected": on_kyc_rejected,
    "ClientBlocked": on_blocked,
    "ClientUnblocked": on_unblocked,
}
