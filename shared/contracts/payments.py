"""Contracts of the payments service.

Events go to ``payments.events``, except ``RepaymentPosted`` (a repayment moved out of
suspense), which no service consumes and which goes to ``payments.postings`` so that the
consumers of ``payments.events`` are not woken for it on every repayment. The loans
saga's commands come on ``payments.commands``. All are keyed by loan id.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from pydantic import Field

from shared.contracts.common import Amount, Currency, Msisdn, PositiveAmount
from shared.envelope import Contract, register

EVENTS = "payments.events"
POSTINGS = "payments.postings"
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
    office_id: str | None = None
    """The loan's office (optional: added after v1); accounting books the loan there."""


@register
class ValidatePayee(Contract):
    """Before any money of a group's disbursement moves: can this member's wallet receive
    a payout? Payments asks the provider (GSMA ``GET /accounts/msisdn/{msisdn}/status``)
    and answers ``PayeeConfirmed`` or ``PayeeRefused`` — only on the provider's word. A
    lookup the provider does not answer is ``PayeeLookupInDoubt`` and asked again, never
    taken for a yes or a no. A repeated command is answered with what is known."""

    topic: ClassVar[str] = COMMANDS
    kind: ClassVar[str] = "command"
    saga_id: str = Field(description="the member's saga step id (group saga leg)")
    loan_id: str
    client_id: str
    msisdn: Msisdn
    amount: PositiveAmount
    currency: Currency = "MAD"
    provider: str | None = None


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
class DisbursementInDoubt(PaymentEvent):
    """The payout's outcome is not known: the provider accepted it (or may have) and has
    not said whether it executed. Nothing is reversed and the credit stays reserved; only
    the provider's word (callback, status query, statement) or an operator's settlement
    with evidence ends it, with DisbursementCompleted or DisbursementFailed."""

    saga_id: str
    client_id: str
    amount: Amount
    provider: str
    reason: str
    since: dt.datetime


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
    """A repayment's money moved out of suspense along loans' allocation (the journal)."""

    topic: ClassVar[str] = POSTINGS
    payment_id: str
    amount: Amount
    journal_id: str


@register
class RefundIssued(PaymentEvent):
    payment_id: str
    amount: Amount
    msisdn: Msisdn | None
    reason: str
    savings_account_id: str | None = None
    """Set when the refunded payment was a wallet deposit to a savings account
    (``loan_id`` then carries its ``SAV-`` reference, not a loan id); None for a loan's
    repayment (optional: added after v1)."""


@register
class RefundInDoubt(PaymentEvent):
    """A refund payout's outcome is not known; it is neither retried with a new reference
    nor released until the provider (or reconciliation) has said whether it executed."""

    payment_id: str
    amount: Amount
    provider: str
    reason: str
    since: dt.datetime
    savings_account_id: str | None = None
    """Set when the refunded payment was a wallet deposit to a savings account
    (``loan_id`` then carries its ``SAV-`` reference, not a loan id); None for a loan's
    repayment (optional: added after v1)."""


@register
class ReconciliationMismatch(PaymentEvent):
    """Reconciliation found a difference with a provider's statement (``mismatch``: ``ours_only``,
    ``theirs_only`` or ``amount_mismatch``). ``loan_id`` is empty when none is known."""

    provider: str
    business_date: dt.date
    mismatch: str
    reference: str
    ours: Amount | None = None
    theirs: Amount | None = None


@register
class RefundFailed(PaymentEvent):
    """The refund could not be paid out; the money is held for an operator."""

    payment_id: str
    amount: Amount
    reason: str
    savings_account_id: str | None = None
    """Set when the refunded payment was a wallet deposit to a savings account
    (``loan_id`` then carries its ``SAV-`` reference, not a loan id); None for a loan's
    repayment (optional: added after v1)."""


@register
class PayeeConfirmed(PaymentEvent):
    """The provider says the wallet can receive the payout (``accountStatus`` available)."""

    saga_id: str
    client_id: str
    msisdn: Msisdn
    provider: str
    account_status: str


@register
class PayeeRefused(PaymentEvent):
    """The provider says the wallet cannot receive it (``unavailable``, or no such
    account): nothing was paid and nothing will be for this command."""

    saga_id: str
    client_id: str
    msisdn: Msisdn
    provider: str
    reason: str


@register
class PayeeLookupInDoubt(PaymentEvent):
    """The provider has not answered the lookup: payments keeps asking (backing off);
    told once per lookup."""

    saga_id: str
    client_id: str
    msisdn: Msisdn
    provider: str
    reason: str
    since: dt.datetime


@register
class PayoutRecoveryRecorded(PaymentEvent):
    """Operators recorded (maker-checker) how much of a payout to recover — a member paid
    in a group disbursement that failed — came back (``returned``) or was written off:
    ``remaining`` is what the member's loan still owes of it; ``status`` the recovery
    request's (``open``, ``recovered``, ``written_off``)."""

    saga_id: str = Field(description="the group saga")
    recovery_id: str
    outcome: str
    amount: Amount
    remaining: Amount
    status: str
