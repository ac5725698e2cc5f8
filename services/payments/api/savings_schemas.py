"""What the savings view of the ledger returns. Money is a decimal string."""

from __future__ import annotations

from pydantic import Field

from services.payments.api.schemas import Money, Out


class SavingsLiability(Out):
    """A savings account's deposit liability on payments' books."""

    account_id: str
    ledger_account_id: str
    exists: bool
    deposit_liability: Money = Field(description=(
        "the account's balance on the books: equals savings' ledger balance once every "
        "withdrawal in flight is final (savings debits a withdrawal when it completes, "
        "payments when it records the payout)"))
    withdrawals_in_flight: Money = Field(description=(
        "withdrawal payouts recorded and not final (pending, submitted, in doubt): "
        "debited here, still held in savings"))
    withdrawals_in_flight_count: int
    payment_reference: str = Field(description="the reference a wallet pays this account with")
    currency: str
