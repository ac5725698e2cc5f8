"""An operator's settlement of an in-doubt payout with evidence, maker-checker, audited.

For when a provider cannot answer at all: one operator proposes the outcome
(``completed`` with the provider's reference, or ``failed``) with the evidence in
hand; a *different* operator approves it, and it is applied through the same
resolve path as the provider's own word (:func:`handlers.payouts.settle_from_evidence`).
Only an ``in_doubt`` payout can be settled; a payout the provider settled in the
meantime makes the proposal ``superseded``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.payments.domain.payouts import PayoutStatus
from services.payments.handlers.payouts import settle_from_evidence
from services.payments.repository import approvals
from services.payments.repository import payouts as payouts_repo
from services.payments.repository.payouts import Payout
from services.payments.settings import PaymentsSettings
from shared.clock import Clock, system_clock
from shared.errors import Conflict, Forbidden, NotFound
from shared.uow import UnitOfWork


@dataclass(frozen=True)
class Approved:
    approval: asyncpg.Record
    payout: Payout | None
    superseded: bool  # the payout was no longer in doubt: nothing applied


async def propose(uow: UnitOfWork, payout_id: uuid.UUID, *, outcome: str, evidence: str,
                  provider_reference: str | None, operator: str, key: str
                  ) -> tuple[asyncpg.Record, Payout]:
    conn = uow.conn
    payout = await payouts_repo.payout(conn, payout_id, lock=True)
    if payout is None:
        raise NotFound(f"no payout {payout_id}", field="id")
    if payout.status is not PayoutStatus.IN_DOUBT:
        raise Conflict(f"payout {payout_id} is {payout.status.value}; only a payout in doubt "
                       "can be settled by an operator", field="id", state=payout.status.value)
    body: dict[str, Any] = {"outcome": outcome, "evidence": evidence,
                            "provider_reference": provider_reference}
    row = await approvals.propose(conn, kind=approvals.SETTLEMENT, target_id=payout.id,
                                  body=body, proposed_by=operator, key=key)
    await approvals.audit(conn, action="settlement_proposed", actor=operator,
                          payout_id=payout.id, payment_id=payout.payment_id,
                          approval_id=row["id"], detail=body)
    return row, payout


async def approve(uow: UnitOfWork, settings: PaymentsSettings, payout_id: uuid.UUID, *,
                  operator: str, note: str, clock: Clock = system_clock) -> Approved:
    conn = uow.conn
    proposal = await approvals.open_proposal(conn, approvals.SETTLEMENT, payout_id, lock=True)
    if proposal is None:
        raise Conflict(f"no settlement of payout {payout_id} waits for approval", field="id")
    if proposal["proposed_by"] == operator:
        raise Forbidden("the operator who proposed a settlement cannot approve it: another "
                        "operator must", field="sub")
    body = approvals.body_of(proposal)
    payout = await payouts_repo.payout(conn, payout_id, lock=True)
    if payout is None or payout.status is not PayoutStatus.IN_DOUBT:
        state = payout.status.value if payout else "unknown"
        closed = await approvals.close(conn, proposal["id"], status="superseded",
                                       approved_by=None, outcome={"payout_status": state})
        await approvals.audit(conn, action="settlement_superseded", actor=operator,
                              payout_id=payout_id, approval_id=proposal["id"],
                              detail={"payout_status": state, "note": note})
        return Approved(closed, payout, superseded=True)
    settled = await settle_from_evidence(
        uow, settings, payout.id, body["outcome"], body.get("provider_reference"),
        "operator", reason=f"settled by operators {proposal['proposed_by']} and {operator}: "
                           f"{body['evidence']}", clock=clock)
    status = settled.status.value if settled else "unknown"
    closed = await approvals.close(conn, proposal["id"], status="approved",
                                   approved_by=operator,
                                   outcome={"payout_status": status, "note": note})
    await approvals.audit(conn, action="settlement_approved", actor=operator,
                          payout_id=payout.id, payment_id=payout.payment_id,
                          approval_id=proposal["id"],
                          detail={**body, "note": note, "payout_status": status})
    return Approved(closed, settled, superseded=False)
