"""Compulsory savings and the loans disbursement saga.

Before its pivot the saga sends ``HoldCompulsorySavings``: savings works out what the
loan's product requires (or takes the saga's figure), sums the compulsory accounts
linked to the loan, and answers ``CompulsorySavingsHeld`` when they hold enough (or
nothing is required) or ``CompulsorySavingsInsufficient``. An insufficient request
waits: the deposit that brings the linked accounts up to it answers
``CompulsorySavingsHeld`` for it, in the deposit's own transaction. Compulsory accounts
never pay a withdrawal while their loan is open (``domain.account.check_withdrawal``),
so what was counted stays. ``ReleaseCompulsorySavings`` (the saga's compensation) frees
them; ``LoanClosed``/``LoanWrittenOff`` free them when the loan ends.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import asyncpg

from services.savings.domain.account import canonical_loan_id
from services.savings.domain.money import ZERO
from services.savings.domain.products import CompulsoryTerms
from services.savings.repository import accounts as accounts_repo
from services.savings.repository import compulsory as repo
from services.savings.repository import products as products_repo
from shared.contracts.savings import (
    CompulsorySavingsHeld,
    CompulsorySavingsInsufficient,
    CompulsorySavingsReleased,
    HoldCompulsorySavings,
    ReleaseCompulsorySavings,
)
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.savings.compulsory")


async def required_for(uow: UnitOfWork, loan_product_id: str, principal: Decimal) -> Decimal:
    """The most any current compulsory product linked to the loan product requires
    before disbursement (0 when none is)."""
    wanted = canonical_loan_id(loan_product_id)
    required = ZERO
    for product in await products_repo.list_current(uow.conn):
        terms = product.terms
        if isinstance(terms, CompulsoryTerms) and (
                canonical_loan_id(terms.loan_product_id) == wanted):
            required = max(required, terms.required_before_disbursement(principal))
    return required


async def _evaluate(uow: UnitOfWork, hold: asyncpg.Record, *, answer_short: bool) -> bool:
    """Held now? Answers ``Held`` when it is, ``Insufficient`` when not and asked to."""
    linked = [a for a in await accounts_repo.linked_to(uow.conn, hold["loan_id"],
                                                       for_update=True)
              if not a.linked_loan_closed]
    total = sum((a.balances.available for a in linked), ZERO)
    ids = [a.id for a in linked]
    if total >= hold["required"]:
        await repo.set_state(uow.conn, hold["saga_id"], "held", held=total)
        uow.emit(CompulsorySavingsHeld(
            saga_id=hold["saga_id"], loan_id=hold["loan_id"], client_id=hold["client_id"],
            required=hold["required"], held=total, account_ids=ids), key=hold["loan_id"])
        log.info("compulsory savings of loan %s held: %s of %s required", hold["loan_id"],
                 total, hold["required"])
        return True
    await repo.set_state(uow.conn, hold["saga_id"], "waiting", held=total)
    if answer_short:
        uow.emit(CompulsorySavingsInsufficient(
            saga_id=hold["saga_id"], loan_id=hold["loan_id"], client_id=hold["client_id"],
            required=hold["required"], held=total, shortfall=hold["required"] - total,
            account_ids=ids, reason="insufficient_balance" if linked else "no_account"),
            key=hold["loan_id"])
    return False


async def on_hold(uow: UnitOfWork, msg: HoldCompulsorySavings, env: Envelope) -> None:
    loan_id = canonical_loan_id(msg.loan_id)
    existing = await repo.get(uow.conn, msg.saga_id, for_update=True)
    if existing is not None and existing["status"] in ("released", "freed"):
        uow.emit(CompulsorySavingsReleased(
            saga_id=msg.saga_id, loan_id=loan_id, client_id=existing["client_id"],
            reason=existing["reason"] or existing["status"]), key=loan_id)
        return
    if existing is None:
        required = msg.required if msg.required is not None else await required_for(
            uow, msg.loan_product_id, msg.principal)
        existing = await repo.insert(
            uow.conn, saga_id=msg.saga_id, loan_id=loan_id, client_id=msg.client_id,
            partner_id=msg.partner_id, loan_product_id=msg.loan_product_id,
            principal=msg.principal, required=required)
    await _evaluate(uow, existing, answer_short=True)   # a resend gets the state as it is


async def reevaluate(uow: UnitOfWork, loan_id: str) -> int:
    """A linked account was credited: answer the waiting requests it now covers."""
    done = 0
    for hold in await repo.waiting_for(uow.conn, loan_id):
        done += await _evaluate(uow, hold, answer_short=False)
    return done


async def on_release(uow: UnitOfWork, msg: ReleaseCompulsorySavings, env: Envelope) -> None:
    """The saga compensates: the loan is not disbursed, its compulsory savings are free."""
    loan_id = canonical_loan_id(msg.loan_id)
    hold = await repo.get(uow.conn, msg.saga_id, for_update=True)
    if hold is not None and hold["status"] in ("waiting", "held"):
        await repo.set_state(uow.conn, msg.saga_id, "released", reason=msg.reason)
        freed = await accounts_repo.reopen_linked(uow.conn, loan_id)
        log.info("compulsory savings of loan %s released (%s): %s", loan_id, msg.reason,
                 freed)
    uow.emit(CompulsorySavingsReleased(
        saga_id=msg.saga_id, loan_id=loan_id,
        client_id=hold["client_id"] if hold is not None else "",
        reason=msg.reason), key=loan_id)


async def on_loan_over(uow: UnitOfWork, loan_id: str, reason: str) -> None:
    await repo.free(uow.conn, canonical_loan_id(loan_id), reason)


COMMAND_HANDLERS = {"HoldCompulsorySavings": on_hold,
                    "ReleaseCompulsorySavings": on_release}
