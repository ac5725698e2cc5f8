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
    # savings (issue 16): one deposit-liability sub-ledger account per savings account
    SAVINGS_DEPOSITS = "savings_deposits"
    BRANCH_CASH = "branch_cash"
    INTEREST_EXPENSE = "interest_expense"
    WITHHOLDING_TAX = "withholding_tax_payable"
    FUNDING = "funding"
    # accrual accounting, provisioning, recoveries, closing (issue 20)
    INTEREST_RECEIVABLE = "interest_receivable"
    ALLOWANCE = "loan_loss_allowance"
    PROVISION_EXPENSE = "provision_expense"
    RECOVERY_INCOME = "recovery_income"
    RETAINED_EARNINGS = "retained_earnings"
    GENERAL = "general"  # ``gl:<code>``: a GL account posted to directly (manual journals)
    # branch cash collections (issue 15): each branch's cash, and its day-end differences
    BRANCH_OFFICE_CASH = "branch_office_cash"
    BRANCH_CASH_SUSPENSE = "branch_cash_suspense"
    # loan servicing (issue 14): interest waived on an early settlement (contra-income),
    # interest capitalised by a restructuring and not yet received (per-loan reserve)
    INTEREST_WAIVED = "interest_waived"
    CAPITALISED_RESERVE = "capitalised_interest_reserve"
    # a client transferred to another branch takes its loans' balances along: each
    # branch's side of the move goes through the inter-branch (liaison) account
    INTER_OFFICE = "inter_office"
    # a loan's fees fallen due and not yet paid (accrual basis)
    FEE_RECEIVABLE = "fee_receivable"


@dataclass(frozen=True)
class AccountSpec:
    id: str
    kind: Kind
    normal: Side
    non_negative: bool
    name: str

    @property
    def moved_at_commit(self) -> bool:
        """The institution's shared account (settlement, suspense, income, cash...): its
        totals move at the commit of the posting's transaction, not when its line is
        written, so that postings do not queue for its row (payments migration 0021)."""
        return self.id.split(":", 1)[0] not in CLIENT_ACCOUNT_KINDS


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
    # Liability mirroring savings' balance. Savings is the authority on whether a
    # withdrawal can be paid (its hold is checked against its available balance); the
    # mirror may lag (branch cash booked from savings.events, a payout recorded from
    # payments.commands), so a payout is never refused for the mirror's lag.
    Kind.SAVINGS_DEPOSITS: (Side.CREDIT, False),
    Kind.BRANCH_CASH: (Side.DEBIT, True),        # asset: cash taken at the branches
    Kind.INTEREST_EXPENSE: (Side.DEBIT, False),
    Kind.WITHHOLDING_TAX: (Side.CREDIT, True),   # liability: tax withheld, owed to the state
    Kind.FUNDING: (Side.CREDIT, False),          # equity / funding lines
    Kind.INTEREST_RECEIVABLE: (Side.DEBIT, True),  # asset: interest accrued, not yet paid
    Kind.ALLOWANCE: (Side.CREDIT, True),         # contra-asset: provision held per loan
    Kind.PROVISION_EXPENSE: (Side.DEBIT, False),  # net of provisions written back
    Kind.RECOVERY_INCOME: (Side.CREDIT, False),  # money received on written-off loans
    Kind.RETAINED_EARNINGS: (Side.CREDIT, False),
    # the GL account's own type gives its sign in statements; the ledger account
    # is unconstrained
    Kind.GENERAL: (Side.DEBIT, False),
    # A branch's cash and its count differences. Collections (keyed by loan) and the
    # day-end count (keyed by office) come on different partitions, so a shortage may be
    # booked before the collections it is short of: neither account is refused for that.
    Kind.BRANCH_OFFICE_CASH: (Side.DEBIT, False),
    Kind.BRANCH_CASH_SUSPENSE: (Side.DEBIT, False),  # shortages to recover, net of overages
    Kind.INTEREST_WAIVED: (Side.DEBIT, False),   # contra-income: recognised, then waived
    Kind.CAPITALISED_RESERVE: (Side.CREDIT, True),  # contra-asset against the portfolio
    # what one branch owes another (or is owed): nets to zero for the institution
    Kind.INTER_OFFICE: (Side.DEBIT, False),
    Kind.FEE_RECEIVABLE: (Side.DEBIT, True),     # asset: fees due, not yet paid
}

SUSPENSE = "suspense"
CLIENT_PAYABLE = "client_payable"
INTEREST_INCOME = "income:interest"
FEE_INCOME = "income:fees"
PENALTY_INCOME = "income:penalties"
WRITE_OFF_EXPENSE = "expense:write_off"
BRANCH_CASH = "cash:branches"
INTEREST_EXPENSE = "expense:savings_interest"
WITHHOLDING_TAX = "tax:withholding_payable"
SAVINGS_PREFIX = "savings:"
FUNDING = "funding"
PROVISION_EXPENSE = "expense:provisions"
RECOVERY_INCOME = "income:recoveries"
RETAINED_EARNINGS = "equity:retained_earnings"
INTEREST_WAIVED = "income:interest_waived"
INTER_OFFICE = "liaison:offices"

FIXED: dict[str, tuple[Kind, str]] = {
    SUSPENSE: (Kind.SUSPENSE, "Repayment suspense"),
    CLIENT_PAYABLE: (Kind.CLIENT_PAYABLE, "Client wallets payable (refunds owed)"),
    INTEREST_INCOME: (Kind.INTEREST_INCOME, "Interest income"),
    FEE_INCOME: (Kind.FEE_INCOME, "Fee income"),
    PENALTY_INCOME: (Kind.PENALTY_INCOME, "Penalty income"),
    WRITE_OFF_EXPENSE: (Kind.WRITE_OFF_EXPENSE, "Write-off expense"),
    BRANCH_CASH: (Kind.BRANCH_CASH, "Branch cash (savings deposits taken at a branch)"),
    INTEREST_EXPENSE: (Kind.INTEREST_EXPENSE, "Interest expense on savings"),
    WITHHOLDING_TAX: (Kind.WITHHOLDING_TAX, "Withholding tax payable on savings interest"),
    FUNDING: (Kind.FUNDING, "Funding"),
    PROVISION_EXPENSE: (Kind.PROVISION_EXPENSE, "Loan-loss provision expense"),
    RECOVERY_INCOME: (Kind.RECOVERY_INCOME, "Recoveries on written-off loans"),
    RETAINED_EARNINGS: (Kind.RETAINED_EARNINGS, "Retained earnings"),
    INTEREST_WAIVED: (Kind.INTEREST_WAIVED, "Interest waived (early settlements)"),
    INTER_OFFICE: (Kind.INTER_OFFICE, "Inter-branch liaison"),
}

# Per-aggregate accounts: prefix -> (kind, name)
PREFIXED: dict[str, tuple[Kind, str]] = {
    "portfolio:": (Kind.PORTFOLIO, "Loan portfolio"),
    "settlement:": (Kind.SETTLEMENT, "Settlement at"),
    "interest_receivable:": (Kind.INTEREST_RECEIVABLE, "Interest receivable"),
    "allowance:": (Kind.ALLOWANCE, "Allowance for loan losses"),
    "gl:": (Kind.GENERAL, "GL account"),
    "cash:branch:": (Kind.BRANCH_OFFICE_CASH, "Cash at branch"),
    "suspense:cash:branch:": (Kind.BRANCH_CASH_SUSPENSE, "Cash count differences at branch"),
    "capitalised_interest:": (Kind.CAPITALISED_RESERVE, "Capitalised interest reserved"),
    "fee_receivable:": (Kind.FEE_RECEIVABLE, "Fees receivable"),
}


# The kinds of account that belong to one client (a loan's, a savings account's), by the
# id's first part; every other account (settlement at a provider, suspense, income, cash)
# is the institution's, shared by many entries at once.
CLIENT_ACCOUNT_KINDS = ("portfolio", "interest_receivable", "allowance", "capitalised_interest",
                        "fee_receivable", "savings")


def portfolio(loan_id: str) -> str:
    return f"portfolio:{loan_id}"


def settlement(provider: str) -> str:
    return f"settlement:{provider}"


def interest_receivable(loan_id: str) -> str:
    return f"interest_receivable:{loan_id}"


def allowance(loan_id: str) -> str:
    return f"allowance:{loan_id}"


def capitalised_interest(loan_id: str) -> str:
    """Interest a restructuring turned into principal and the borrower has not paid yet
    (reserved against the loan's portfolio)."""
    return f"capitalised_interest:{loan_id}"


def fee_receivable(loan_id: str) -> str:
    """A loan's fees fallen due and not yet paid (accrual basis)."""
    return f"fee_receivable:{loan_id}"


def gl(code: str) -> str:
    """The ledger account of a GL account posted to directly (manual journals, closing)."""
    return f"gl:{code}"


def branch_cash(office_id: str) -> str:
    """The cash a branch's officers collected (``cash:branch:<branch office id>``)."""
    return f"cash:branch:{office_id}"


def branch_cash_suspense(office_id: str) -> str:
    """A branch's day-end cash differences, awaiting regularisation."""
    return f"suspense:cash:branch:{office_id}"


def spec_for(account_id: str) -> AccountSpec:
    """The account an id names (the chart is closed: unknown ids are refused)."""
    deposits = _savings_spec(account_id)
    if deposits is not None:
        return deposits
    if account_id in FIXED:
        kind, name = FIXED[account_id]
    else:
        for prefix, (prefixed_kind, label) in PREFIXED.items():
            if account_id.startswith(prefix) and len(account_id) > len(prefix):
                kind, name = prefixed_kind, f"{label} {account_id[len(prefix):]}"
                break
        else:
            raise ValueError(f"no account {account_id!r} in the chart of accounts")
    normal, non_negative = RULES[kind]
    return AccountSpec(account_id, kind, normal, non_negative, name)


def savings_deposits(account_id: str) -> str:
    """The deposit liability of one savings account (its balance mirrors savings')."""
    return f"{SAVINGS_PREFIX}{account_id}"


def _savings_spec(account_id: str) -> AccountSpec | None:
    if not account_id.startswith(SAVINGS_PREFIX) or len(account_id) == len(SAVINGS_PREFIX):
        return None
    normal, non_negative = RULES[Kind.SAVINGS_DEPOSITS]
    return AccountSpec(account_id, Kind.SAVINGS_DEPOSITS, normal, non_negative,
                       f"Savings deposits {account_id[len(SAVINGS_PREFIX):]}")
