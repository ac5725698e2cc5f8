"""``GET /v1/payouts/in-doubt``: payouts whose outcome the provider has not told us, with
their age, oldest first (the console's saga monitor), keyset-paged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.payments import state
from services.payments.api.deps import runtime
from services.payments.api.paging import decode_cursor, encode_cursor
from services.payments.api.payout_schemas import InDoubtPage, InDoubtPayout, ProposalOut
from services.payments.repository import approvals
from services.payments.repository import payouts as repo
from shared.auth import Principal, require
from shared.errors import InvalidInput
from shared.money import format_amount

OPERATOR = ("payments:read", "tenant:all")
KINDS = ("disbursement", "refund", "withdrawal")

router = APIRouter(tags=["payouts"])


def proposal_view(row: Any) -> ProposalOut:
    return ProposalOut(
        proposal_id=row["id"], kind=row["kind"], target_id=str(row["target_id"]),
        status=row["status"], body=approvals.body_of(row), proposed_by=row["proposed_by"],
        proposed_at=row["proposed_at"].isoformat(), approved_by=row["approved_by"],
        approved_at=row["approved_at"].isoformat() if row["approved_at"] else None)


@router.get("/v1/payouts/in-doubt", response_model=InDoubtPage,
            summary="Payouts in doubt, oldest first, with their age")
async def in_doubt(
    request: Request, principal: Annotated[Principal, require(*OPERATOR)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    provider: Annotated[str | None, Query(max_length=100)] = None,
) -> InDoubtPage:
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    after = decode_cursor(cursor)
    rt = runtime(request)
    now = state.clock(rt.state)()
    async with rt.pool.acquire() as conn:
        rows = await repo.in_doubt_page(conn, limit=limit + 1, after=after, kind=kind,
                                        provider=provider)
        page = rows[:limit]
        proposals = {p.id: await approvals.open_proposal(conn, approvals.SETTLEMENT, p.id)
                     for p in page}
    items = []
    for p in page:
        since = p.in_doubt_since or p.created_at
        proposal = proposals.get(p.id)
        items.append(InDoubtPayout(
            payout_id=str(p.id), kind=p.kind, saga_id=p.saga_id, loan_id=p.loan_id,
            payment_id=str(p.payment_id) if p.payment_id else None, msisdn=p.msisdn,
            amount=format_amount(p.amount), currency=p.currency, provider=p.provider,
            deadline=p.deadline.isoformat(), in_doubt_since=since.isoformat(),
            age_s=round(max((now - since).total_seconds(), 0.0), 3),
            reason=p.in_doubt_reason, queries=p.doubt_queries,
            proposal=proposal_view(proposal) if proposal else None))
    more = len(rows) > limit
    last = page[-1] if page else None
    return InDoubtPage(items=items, next_cursor=encode_cursor(
        last.in_doubt_since or last.created_at, last.id) if more and last else None)
