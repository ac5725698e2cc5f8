"""The chart of accounts.

Account ids are readable strings: ``portfolio:<loan_id>`` (one sub-ledger
account per loan, so each loan's outstanding principal can be read),
``settlement:<provider>`` (our float at each mobile-money provider) and one
account for each of the other kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"

    @property
    def other(self) -> Side:
        return Side.CREDIT if self is Side.DEBIT else Side.DEBIT


class Kind(StrEnum):
    PORTFOLIO = "loan_portfolio"
    SETTLEMENT = "provider_settlement"
    CLIENT_PAYABLE = "client_payable"
    SUSPENSE = "repayment_suspense"
    INTEREST_INCOME = "interest_income"
    FEE_INCOME = "fee_income"
    PENALTY_INCOME = "penalty_income"
    WRITE_OFF_EXPENSE = "write_off_expense"
    FUNDING = "funding"


@dataclass(frozen=True)
class AccountSpec:
    id: str
    kind: Kind
    normal: Side
    non_negative: bool
    name: str


# kind -> (normal side, must not go negative)
RULES: dict[Kind, tuple[Side, bool]] = {
    Kind.PORTFOLIO: (Side.DEBIT, True),          # asset: principal the borrower owes us
    Kind.SETTLEMENT: (Side.DEBIT, True),         # asset: our float at the provider
    Kind.CLIENT_PAYABLE: (Side.CREDIT, True),    # liability: money owed back to clients
    Kind.SUSPENSE: (Side.CREDIT, True),          # liability: received, not yet allocated
    Kind.INTEREST_INCOME: (Side.CREDIT, False),
    Kind.FEE_INCOME: (Side.CREDIT, False),
    Kind.PENALTY_INCOME: (Side.CREDIT, False),
    Kind.WRITE_OFF_EXPENSE: (Side.DEBIT, False),
    Kind.FUNDING: (Side.CREDIT, False),          # equity / funding lines
}

SUSPENSE = "suspense"
CLIENT_PAYABLE = "client_payable"
INTEREST_INCOME = "income:interest"
FEE_INCOME = "income:fees"
PENALTY_INCOME = "income:penalties"
WRITE_OFF_EXPENSE = "expense:write_off"
FUNDING = "funding"

FIXED: dict[str, tuple[Kind, str]] = {
    SUSPENSE: (Kind.SUSPENSE, "Repayment suspense"),
    CLIENT_PAYABLE: (Kind.CLIENT_PAYABLE, "Client wallets payable (refunds owed)"),
    INTEREST_INCOME: (Kind.INTEREST_INCOME, "Interest income"),
    FEE_INCOME: (Kind.FEE_INCOME, "Fee income"),
    PENALTY_INCOME: (Kind.PENALTY_INCOME, "Penalty income"),
    WRITE_OFF_EXPENSE: (Kind.WRITE_OFF_EXPENSE, "Write-off expense"),
    FUNDING: (Kind.FUNDING, "Funding"),
}


def portfolio(loan_id: str) -> str:
    return f"portfolio:{loan_id}"


def settlement(provider: str) -> str:
    return f"settlement:{provider}"


def spec_for(account_id: str) -> AccountSpec:
    """The account an id names (the chart is closed: unknown ids are refused)."""
    if account_id in FIXED:
        kind, name = FIXED[account_id]
    elif account_id.startswith("portfolio:") and len(account_id) > len("portfolio:"):
        kind, name = Kind.PORTFOLIO, f"Loan portfolio {account_id.split(':', 1)[1]}"
    elif account_id.startswith("settlement:") and len(account_id) > len("settlement:"):
        kind, name = Kind.SETTLEMENT, f"Settlement at {account_id.split(':', 1)[1]}"
    else:
        raise ValueError(f"no account {account_id!r} in the chart of accounts")
    normal, non_negative = RULES[kind]
    return AccountSpec(account_id, kind, normal, non_negative, name)
