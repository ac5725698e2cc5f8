"""Money in: a confirmed collection callback or a wallet's direct repayment call.

Both post Dr provider settlement / Cr repayment suspense and emit
``RepaymentReceived`` with the loan reference as given: payments does not know
loans, so an unknown reference comes back as ``RepaymentRejected`` and is
refunded.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from services.payments.domain import postings
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payments as repo
from shared.clock import system_clock
from shared.contracts.payments import RepaymentReceived
from shared.uow import UnitOfWork


async def record_collection(
    uow: UnitOfWork, *, loan_id: str, amount: Decimal, currency: str,
    payer_msisdn: str | None, provider: str, source: str, partner_id: str | None,
    external_ref: str, provider_reference: str | None, reported_ref: str | None = None,
) -> tuple[uuid.UUID, bool]:
    """Record one collection; ``(payment_id, False)`` if it was already recorded.

    ``external_ref`` is unique per provider and source; ``reported_ref`` (default:
    the same) is the reference put on ``RepaymentReceived``.
    """
    conn = uow.conn
    payment_id = uuid.uuid4()
    inserted = await repo.insert_payment(
        conn, payment_id=payment_id, loan_id=loan_id, amount=amount, currency=currency,
        payer_msisdn=payer_msisdn, provider=provider, source=source, partner_id=partner_id,
        external_ref=external_ref, provider_reference=provider_reference)
    if not inserted:
        row = await repo.payment_by_ref(conn, provider, source, external_ref)
        if row is None and provider_reference is not None:
            row = await repo.payment_by_provider_reference(conn, provider, provider_reference)
        assert row is not None
        return row["id"], False
    await ledger_repo.post(conn, postings.collection(str(payment_id), loan_id, provider, amount))
    uow.emit(RepaymentReceived(
        loan_id=loan_id, payment_id=str(payment_id), amount=amount, currency=currency,
        payer_msisdn=payer_msisdn, provider=provider, external_ref=reported_ref or external_ref,
        received_at=system_clock()), key=loan_id)
    return payment_id, True
