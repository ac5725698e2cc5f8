"""Contracts of the savings service, and the payments replies its withdrawal saga reads.

Savings publishes its events on ``savings.events`` keyed by account id (the replies to
the loans saga below are keyed by loan id), and sends ``PayOutWithdrawal`` to
``payments.commands`` keyed by account id. Payments answers on ``payments.events``
(keyed by account id) with ``WithdrawalPaidOut``, ``WithdrawalPayoutFailed`` or
``WithdrawalPayoutInDoubt``, and credits a collection whose reference is
``SAV-<account id>`` (:func:`payment_reference`) with ``SavingsDepositReceived``.
Commands to savings come on ``savings.commands``: the loans disbursement saga's
``HoldCompulsorySavings`` (answered ``CompulsorySavingsHeld`` or
``CompulsorySavingsInsufficient``) and ``ReleaseCompulsorySavings`` (its compensation,
answered ``CompulsorySavingsReleased``).

The payments ledger mirrors every movement on the account's deposit liability
(``savings:<account id>``):

- ``SavingsDepositReceived``: payments posted Dr settlement / Cr deposit liability
  itself when the collection was confirmed; ``DepositPosted`` (channel
  ``mobile_money``) books nothing more;
- ``DepositPosted`` (channel ``branch_cash`` or ``opening``): Dr branch cash / Cr deposit
  liability;
- ``PayOutWithdrawal``: payments debits the deposit liability when it *records* the
  payout (Dr deposit liability / Cr settlement), reversed if the payout fails; so while
  a withdrawal is in flight savings' balance = deposit liability + withdrawals in flight;
- ``WithdrawalCompleted``: only the fee, Dr deposit liability / Cr fee income (the
  amount was debited with the payout);
- ``InterestPosted``: Dr interest expense / Cr deposit liability (gross), then Dr
  deposit liability / Cr withholding tax payable (tax);
- ``StandingInstructionPayment``: Dr deposit liability / Cr suspense, then applied to the
  loan as a repayment (payments' and loans' side, see the savings README).
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from shared.contracts.common import Amount, Currency, Msisdn, PositiveAmount
from shared.envelope import Contract, register

EVENTS = "savings.events"
REFERENCE_PREFIX = "SAV-"
COMMANDS = "savings.commands"
PAYMENTS_EVENTS = "payments.events"
PAYMENTS_COMMANDS = "payments.commands"

ProductKind = Literal["voluntary", "compulsory", "term_deposit"]
DepositChannel = Literal["branch_cash", "mobile_money", "opening"]


def payment_reference(account_id: str) -> str:
    """What a client gives a wallet to pay into a savings account: ``SAV-<account id>``
    (account ids are lower-case UUIDs; payments reads the prefix in any case)."""
    return f"{REFERENCE_PREFIX}{account_id.lower()}"


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


# --- the loans disbursement saga: compulsory savings held before the pivot ---------

@register
class HoldCompulsorySavings(Contract):
    """From the loans disbursement saga, before its pivot (``DisburseLoan``): hold the
    compulsory savings the loan's product requires (``savings.commands``, keyed by loan
    id). ``required`` is what loans computed, if it did; otherwise savings computes it
    from its compulsory products linked to ``loan_product_id`` (``share_of_principal``
    of ``principal``, half up). Answered once per state on ``savings.events`` (keyed by
    loan id): ``CompulsorySavingsHeld`` at once when the linked accounts hold enough (or
    nothing is required), else ``CompulsorySavingsInsufficient`` and, as soon as a
    deposit brings them up to it, ``CompulsorySavingsHeld``. A resend (same ``saga_id``)
    is answered with the current state."""

    topic: ClassVar[str] = COMMANDS
    kind: ClassVar[str] = "command"
    saga_id: str
    loan_id: str
    client_id: str
    partner_id: str
    loan_product_id: str
    principal: PositiveAmount
    required: Amount | None = None
    currency: Currency = "MAD"


CheckCompulsorySavings = HoldCompulsorySavings
"""The same command under the name the issue also uses: checking is holding."""


@register
class ReleaseCompulsorySavings(Contract):
    """The saga's compensation: the loan will not be disbursed, its compulsory savings
    are free (withdrawable) again. Answered ``CompulsorySavingsReleased``."""

    topic: ClassVar[str] = COMMANDS
    kind: ClassVar[str] = "command"
    saga_id: str
    loan_id: str
    reason: str


class CompulsorySavingsReply(Contract):
    topic: ClassVar[str] = EVENTS
    saga_id: str
    loan_id: str
    client_id: str


@register
class CompulsorySavingsHeld(CompulsorySavingsReply):
    """The loan's compulsory savings are held (blocked until ``LoanClosed``,
    ``LoanWrittenOff`` or ``ReleaseCompulsorySavings``): the saga may go on."""

    required: Amount
    held: Amount
    account_ids: list[str]


@register
class CompulsorySavingsInsufficient(CompulsorySavingsReply):
    """Not (yet) enough: the saga waits (until its own deadline). Savings answers
    ``CompulsorySavingsHeld`` for the same saga once deposits reach ``required``."""

    required: Amount
    held: Amount
    shortfall: Amount
    account_ids: list[str]
    reason: Literal["no_account", "insufficient_balance"]


@register
class CompulsorySavingsReleased(CompulsorySavingsReply):
    reason: str


# --- standing instruction: a due installment paid from voluntary savings -----------

@register
class StandingInstructionPayment(SavingsEvent):
    """Savings debited ``amount`` from a voluntary account under the client's standing
    instruction, for an installment loans said was due (``RepaymentDue``). Payments
    books it (Dr the account's deposit liability / Cr suspense, transfer id
    ``standing_instruction:<payment_id>``) and applies it to ``loan_id`` as a repayment
    with ``payment_id``, as for a wallet collection. One per (loan, installment)."""

    payment_id: str
    loan_id: str
    installment: int
    due_date: dt.date
    amount: PositiveAmount
    amount_due: Amount
    currency: Currency = "MAD"
    ledger_balance: Amount
    available_balance: Amount
    value_date: dt.date
