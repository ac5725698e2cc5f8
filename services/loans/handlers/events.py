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
    async def reply(saga_id: str, loan_id: str, uow: UnitOfWork, event: sg.SagaEvent,
                    leg_event: gs.GroupEvent | None, event_name: str) -> None:
        """A loan's disbursement saga first (every loan's; one statement reads it and its
        loan), then a group loan's leg (leg ids are never saga ids)."""
        if await advance(uow, saga_id, loan_id, event, policy, event_name):
            return
        if leg_event is not None and await advance_leg(uow, saga_id, leg_event, policy,
                                                       event_name):
            return
        log.info("%s for unknown saga %s (loan %s) ignored", event_name, saga_id, loan_id)

    async def on_credit_reserved(uow: UnitOfWork, msg: CreditReserved, env: Envelope) -> None:
        now = now_utc()
        await reply(msg.saga_id, msg.loan_id, uow,
                    sg.CreditReservedReply(now, msg.msisdn, msg.language),
                    gs.LegCreditReserved(msg.saga_id, now, msg.msisdn, msg.language),
                    "CreditReserved")

    async def on_credit_rejected(uow: UnitOfWork, msg: CreditRejected, env: Envelope) -> None:
        now = now_utc()
        await reply(msg.saga_id, msg.loan_id, uow,
                    sg.CreditRejectedReply(now, msg.reason, msg.detail),
                    gs.LegCreditRejected(msg.saga_id, now, f"{msg.reason} {msg.detail}".strip()),
                    "CreditRejected")

    async def on_credit_released(uow: UnitOfWork, msg: CreditReleased, env: Envelope) -> None:
        now = now_utc()
        await reply(msg.saga_id, msg.loan_id, uow, sg.CreditReleasedReply(now),
                    gs.LegCreditReleased(msg.saga_id, now), "CreditReleased")

    async def on_completed(uow: UnitOfWork, msg: DisbursementCompleted, env: Envelope) -> None:
        now = now_utc()
        await reply(msg.saga_id, msg.loan_id, uow,
                    sg.PayoutCompleted(now, msg.completed_at, msg.provider_reference),
                    gs.LegPayoutCompleted(msg.saga_id, now, msg.completed_at,
                                          msg.provider_reference),
                    "DisbursementCompleted")

    async def on_failed(uow: UnitOfWork, msg: DisbursementFailed, env: Envelope) -> None:
        now = now_utc()
        await reply(msg.saga_id, msg.loan_id, uow, sg.PayoutFailed(now, msg.reason),
                    gs.LegPayoutFailed(msg.saga_id, now, msg.reason), "DisbursementFailed")

    async def on_in_doubt(uow: UnitOfWork, msg: DisbursementInDoubt, env: Envelope) -> None:
        now = now_utc()
        await reply(msg.saga_id, msg.loan_id, uow, sg.PayoutInDoubt(now, msg.since, msg.reason),
                    gs.LegPayoutInDoubt(msg.saga_id, now, msg.since, msg.reason),
                    "DisbursementInDoubt")

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
        await reply(msg.saga_id, msg.loan_id, uow, sg.SavingsHeldReply(now_utc(), msg.held),
                    None, "CompulsorySavingsHeld")

    async def on_savings_short(uow: UnitOfWork, msg: CompulsorySavingsInsufficient,
                               env: Envelope) -> None:
        await reply(msg.saga_id, msg.loan_id, uow,
                    sg.SavingsInsufficientReply(now_utc(), msg.shortfall, msg.reason),
                    None, "CompulsorySavingsInsufficient")

    async def on_savings_released(uow: UnitOfWork, msg: CompulsorySavingsReleased,
                                  env: Envelope) -> None:
        await reply(msg.saga_id, msg.loan_id, uow, sg.SavingsReleasedReply(now_utc()), None,
                    "CompulsorySavingsReleased")

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
