"""Contracts of the savings service, and the payments replies its withdrawal saga reads.

Savings publishes its events on ``savings.events`` keyed by account id, and sends
``PayOutWithdrawal`` to ``payments.commands`` keyed by account id. Payments answers on
``payments.events`` (keyed by account id) with ``WithdrawalPaidOut``,
``WithdrawalPayoutFailed`` or ``WithdrawalPayoutInDoubt``, and credits a collection
whose reference is a savings account with ``SavingsDepositReceived``. Commands to
savings (from the loans saga, later) come on ``savings.commands``.

The payments ledger mirrors every movement: ``DepositPosted`` (channel
``branch_cash``: Dr branch cash / Cr deposit liability), ``WithdrawalCompleted``
(Dr deposit liability / Cr payout clearing, and the fee to fee income),
``InterestPosted`` (Dr interest expense / Cr deposit liability, then Dr deposit
liability / Cr withholding tax payable).
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from shared.contracts.common import Amount, Currency, Msisdn, PositiveAmount
from shared.envelope import Contract, register

EVENTS = "savings.events"
COMMANDS = "savings.commands"
PAYMENTS_EVENTS = "payments.events"
PAYMENTS_COMMANDS = "payments.commands"

ProductKind = Literal["voluntary", "compulsory", "term_deposit"]
DepositChannel = Literal["branch_cash", "mobile_money", "opening"]


class SavingsEvent(Contract):
    topic: ClassVar[str] = EVENTS
    account_id: str
    client_id: str


@register
class SavingsAccountOpened(SavingsEvent):
    partner_id: str
    product_id: str
    product_version: int
    product_kind: ProductKind
    currency: Currency = "MAD"
    status: Literal["active", "pending_approval"]
    opened_by: str


@register
class SavingsAccountApproved(SavingsEvent):
    approved_by: str


@register
class SavingsAccountRejected(SavingsEvent):
    rejected_by: str
    reason: str


@register
class DepositPosted(SavingsEvent):
    """The account was credited. ``channel`` tells payments which side to debit:
    ``branch_cash`` and ``opening`` are cash taken at a branch (payments posts Dr
    branch cash / Cr deposit liability); ``mobile_money`` was already posted by payments
    (``payment_id``) when it published ``SavingsDepositReceived``."""

    deposit_id: str
    amount: PositiveAmount
    currency: Currency = "MAD"
    channel: DepositChannel
    payment_id: str | None = None
    ledger_balance: Amount
    available_balance: Amount
    value_date: dt.date
    posted_by: str


@register
class SavingsDepositRejected(SavingsEvent):
    """A collection payments credited to a savings reference that cannot take it
    (unknown, closed, not yet approved, or a term deposit): payments refunds or holds
    it. ``client_id`` is empty when the account is unknown."""

    payment_id: str
    amount: Amount
    reason: Literal["unknown_account", "account_closed", "account_not_active",
                    "currency_not_supported"]


@register
class WithdrawalRequested(SavingsEvent):
    """A hold of ``amount + fee`` was placed and the payout asked of payments."""

    withdrawal_id: str
    amount: PositiveAmount
    fee: Amount
    currency: Currency = "MAD"
    msisdn: Msisdn
    requested_by: str


@register
class WithdrawalCompleted(SavingsEvent):
    """The payout was made: the hold became a debit of ``amount`` and ``fee``."""

    withdrawal_id: str
    amount: Amount
    fee: Amount
    currency: Currency = "MAD"
    provider_reference: str | None = None
    ledger_balance: Amount
    available_balance: Amount
    value_date: dt.date


@register
class WithdrawalReleased(SavingsEvent):
    """The payout did not happen: the hold was released, nothing was debited."""

    withdrawal_id: str
    amount: Amount
    reason: str
    available_balance: Amount


@register
class WithdrawalInDoubt(SavingsEvent):
    """Payments does not know whether the payout executed: the hold stays."""

    withdrawal_id: str
    amount: Amount
    reason: str


@register
class InterestPosted(SavingsEvent):
    """Interest of a period credited (``gross``) and the withholding tax debited."""

    period_start: dt.date
    period_end: dt.date
    gross: Amount
    withholding_tax: Amount
    net: Amount
    currency: Currency = "MAD"
    ledger_balance: Amount
    business_date: dt.date


@register
class AccountDormant(SavingsEvent):
    last_client_transaction_on: dt.date | None
    business_date: dt.date


@register
class AccountReactivated(SavingsEvent):
    reactivated_by: str


@register
class AccountBlocked(SavingsEvent):
    reason: str
    blocked_by: str


@register
class AccountUnblocked(SavingsEvent):
    reason: str
    unblocked_by: str


@register
class SavingsAccountClosed(SavingsEvent):
    closed_by: str
    reason: str


@register
class TermDepositMatured(SavingsEvent):
    """A term deposit reached maturity: interest posted, then renewed or left to pay out."""

    maturity_date: dt.date
    interest: Amount
    instruction: Literal["renew", "pay_out"]
    next_maturity_date: dt.date | None = None


# --- to payments, and its replies -------------------------------------------------

@register
class PayOutWithdrawal(Contract):
    """Pay ``amount`` from the savings account to the client's wallet, once.

    ``withdrawal_id`` is the idempotency key all the way to the provider; savings sends
    exactly one of these per withdrawal. The fee stays in savings' books until the
    withdrawal completes (``WithdrawalCompleted.fee``)."""

    topic: ClassVar[str] = PAYMENTS_COMMANDS
    kind: ClassVar[str] = "command"
    withdrawal_id: str
    account_id: str
    client_id: str
    partner_id: str
    amount: PositiveAmount
    currency: Currency = "MAD"
    msisdn: Msisdn
    provider: str | None = None
    deadline: dt.datetime


class SavingsPaymentEvent(Contract):
    """What payments publishes about a savings account (``payments.events``)."""

    topic: ClassVar[str] = PAYMENTS_EVENTS
    account_id: str


@register
class WithdrawalPaidOut(SavingsPaymentEvent):
    withdrawal_id: str
    amount: Amount
    currency: Currency = "MAD"
    msisdn: Msisdn
    provider: str
    provider_reference: str
    completed_at: dt.datetime


@register
class WithdrawalPayoutFailed(SavingsPaymentEvent):
    """The payout did not happen (the provider's word, or never sent)."""

    withdrawal_id: str
    amount: Amount
    reason: str
    provider: str | None = None


@register
class WithdrawalPayoutInDoubt(SavingsPaymentEvent):
    """Nobody knows yet whether the payout executed; only the provider's word ends it,
    with WithdrawalPaidOut or WithdrawalPayoutFailed."""

    withdrawal_id: str
    amount: Amount
    provider: str
    reason: str
    since: dt.datetime


@register
class SavingsDepositReceived(SavingsPaymentEvent):
    """A collection whose reference is a savings account, posted by payments
    (Dr settlement / Cr the account's deposit liability)."""

    payment_id: str
    amount: PositiveAmount
    currency: Currency = "MAD"
    payer_msisdn: Msisdn | None = None
    provider: str | None = None
    external_ref: str
    received_at: dt.datetime
