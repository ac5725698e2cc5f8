"""Contracts of the payments service.

Events go to ``payments.events``; the loans saga's commands come on
``payments.commands``. Both are keyed by loan id.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from shared.contracts.common import Amount, Currency, Msisdn, PositiveAmount
from shared.envelope import Contract, register

EVENTS = "payments.events"
COMMANDS = "payments.commands"


@register
class DisburseLoan(Contract):
    """The saga's pivot: pay ``amount`` out to the borrower's wallet, once.

    ``saga_id`` is the idempotency key all the way to the provider.
    """

    topic: ClassVar[str] = COMMANDS
    kind: ClassVar[str] = "command"
    saga_id: str
    loan_id: str
    client_id: str
    partner_id: str
    amount: PositiveAmount
    currency: Currency = "MAD"
    msisdn: Msisdn
    provider: str | None = None
    deadline: dt.datetime


class PaymentEvent(Contract):
    topic: ClassVar[str] = EVENTS
    loan_id: str


@register
class DisbursementCompleted(PaymentEvent):
    saga_id: str
    client_id: str
    amount: Amount
    currency: Currency = "MAD"
    msisdn: Msisdn
    provider: str
    provider_reference: str
    completed_at: dt.datetime


@register
class DisbursementFailed(PaymentEvent):
    """The payout did not happen; the ledger entry was reversed."""

    saga_id: str
    client_id: str
    amount: Amount
    reason: str
    provider: str | None = None


@register
class RepaymentReceived(PaymentEvent):
    """Money for a loan arrived and sits in suspense until loans allocates it."""

    payment_id: str
    amount: PositiveAmount
    currency: Currency = "MAD"
    payer_msisdn: Msisdn | None
    provider: str | None
    external_ref: str
    received_at: dt.datetime


@register
class RepaymentPosted(PaymentEvent):
    payment_id: str
    amount: Amount
    journal_id: str


@register
class RefundIssued(PaymentEvent):
    payment_id: str
    amount: Amount
    msisdn: Msisdn | None
    reason: str


@register
class RefundFailed(PaymentEvent):
    """The refund could not be paid out; the money is held for an operator."""

    payment_id: str
    amount: Amount
    reason: str
