"""The chart of accounts and the accounting rules, as data (pure).

A GL account has a code, names in French and Arabic, a type (asset, liability,
equity, income, expense), a usage (``header`` accounts only roll up, ``detail``
accounts take postings), a parent (a tree for roll-ups) and the regulator's code it
maps to. The rows live in ``gl_accounts``; the default chart is seeded by migration
0006 with the classes of the Moroccan credit institutions' chart (PCEC).

Accounting rules map each ledger account *kind* (the roles below) to a GL account,
per product (``*`` is the default). Each posting kind moves the roles listed in
:data:`POSTING_KINDS`, so a product's rules decide where every posting lands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from services.payments.domain.accounts import Kind, Side
from shared.errors import InvalidInput

DEFAULT_PRODUCT = "*"


class GLType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"

    @property
    def normal(self) -> Side:
        return Side.DEBIT if self in (GLType.ASSET, GLType.EXPENSE) else Side.CREDIT


@dataclass(frozen=True)
class GLAccount:
    code: str
    name_fr: str
    name_ar: str
    type: GLType
    usage: str = "detail"
    parent_code: str | None = None
    regulator_code: str | None = None


# The roles a product maps (ledger account kinds), and what each is for.
ROLES: dict[str, str] = {
    Kind.PORTFOLIO.value: "loan portfolio control account (per-loan sub-ledgers)",
    Kind.INTEREST_RECEIVABLE.value: "interest accrued, not yet paid (per-loan sub-ledgers)",
    Kind.ALLOWANCE.value: "allowance for loan losses (per-loan sub-ledgers, contra-asset)",
    Kind.SETTLEMENT.value: "float at the mobile-money providers",
    Kind.CLIENT_PAYABLE.value: "money owed back to clients",
    Kind.SUSPENSE.value: "repayments received, not yet allocated",
    Kind.INTEREST_INCOME.value: "interest income",
    Kind.FEE_INCOME.value: "fee income",
    Kind.PENALTY_INCOME.value: "penalty income",
    Kind.RECOVERY_INCOME.value: "recoveries on written-off loans",
    Kind.WRITE_OFF_EXPENSE.value: "write-offs not covered by the allowance",
    Kind.PROVISION_EXPENSE.value: "provisions charged, net of provisions written back",
    Kind.FUNDING.value: "capital and funding",
    Kind.RETAINED_EARNINGS.value: "retained earnings (year-end close)",
    "savings_deposits": "savings deposits (per-account sub-ledgers)",
    "branch_cash": "cash taken at the branches",
    "interest_expense": "interest paid on savings",
    "withholding_tax_payable": "tax withheld on savings interest, to pay over",
    Kind.BRANCH_OFFICE_CASH.value: "cash collected at each branch (per-branch sub-ledgers)",
    Kind.BRANCH_CASH_SUSPENSE.value: "branch day-end cash differences, to regularise",
    Kind.INTEREST_WAIVED.value: "interest recognised and then waived (early settlements)",
    Kind.CAPITALISED_RESERVE.value: ("interest capitalised by a restructuring, not yet "
                                     "received (per-loan sub-ledgers, contra-asset)"),
    Kind.FEE_RECEIVABLE.value: "fees fallen due, not yet paid (per-loan sub-ledgers)",
    Kind.INTER_OFFICE.value: "inter-branch liaison (a transferred client's balances)",
}

# posting kind -> (debited roles, credited roles): documentation the API serves, and
# what the rules must cover.
POSTING_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "disbursement": (("loan_portfolio",), ("provider_settlement",)),
    "collection": (("provider_settlement",), ("repayment_suspense",)),
    "repayment_principal": (("repayment_suspense",), ("loan_portfolio",)),
    "repayment_interest": (("repayment_suspense",), ("interest_receivable", "interest_income")),
    "repayment_fees": (("repayment_suspense",), ("fee_receivable", "fee_income")),
    "repayment_reserve_release": (("capitalised_interest_reserve",), ("interest_income",)),
    "repayment_penalties": (("repayment_suspense",), ("penalty_income",)),
    "refund": (("repayment_suspense", "client_payable"),
               ("client_payable", "provider_settlement")),
    "write_off": (("capitalised_interest_reserve", "loan_loss_allowance", "write_off_expense",
                   "interest_income", "fee_income"),
                  ("loan_portfolio", "interest_receivable", "fee_receivable",
                   "provision_expense")),
    "recovery": (("repayment_suspense",), ("recovery_income",)),
    "interest_accrual": (("interest_receivable",), ("interest_income",)),
    "interest_reversal": (("interest_income",), ("interest_receivable",)),
    "fee_accrual": (("fee_receivable",), ("fee_income",)),
    "fee_reversal": (("fee_income",), ("fee_receivable",)),
    "provision": (("provision_expense",), ("loan_loss_allowance",)),
    "provision_release": (("loan_loss_allowance",), ("provision_expense",)),
    "savings_deposit": (("provider_settlement", "branch_cash"), ("savings_deposits",)),
    "savings_withdrawal": (("savings_deposits",), ("provider_settlement", "branch_cash")),
    "savings_interest": (("interest_expense",), ("savings_deposits",)),
    "savings_withholding": (("savings_deposits",), ("withholding_tax_payable",)),
    "year_end_close": (("income",), ("retained_earnings",)),
    "cash_collection": (("branch_office_cash",), ("repayment_suspense",)),
    "cash_difference": (("branch_office_cash", "branch_cash_suspense"),
                        ("branch_cash_suspense", "branch_office_cash")),
    "standing_instruction": (("savings_deposits",), ("repayment_suspense",)),
    "standing_instruction_return": (("repayment_suspense",), ("savings_deposits",)),
    "interest_waiver": (("interest_waived",), ("interest_receivable",)),
    "interest_capitalisation": (("loan_portfolio",),
                                ("interest_receivable", "capitalised_interest_reserve")),
    "office_transfer": (("loan_portfolio", "interest_receivable", "fee_receivable",
                         "loan_loss_allowance", "capitalised_interest_reserve",
                         "inter_office"),
                        ("loan_portfolio", "interest_receivable", "fee_receivable",
                         "loan_loss_allowance", "capitalised_interest_reserve",
                         "inter_office")),
}


def check_tree(accounts: Iterable[GLAccount]) -> None:
    """Every parent exists, is a header, and the tree has no cycle."""
    by_code = {a.code: a for a in accounts}
    for account in by_code.values():
        seen = {account.code}
        parent = account.parent_code
        while parent is not None:
            node = by_code.get(parent)
            if node is None:
                raise InvalidInput(f"GL account {account.code}: parent {parent} does not exist",
                                   field="parent_code")
            if node.usage != "header":
                raise InvalidInput(f"GL account {account.code}: parent {parent} is a detail "
                                   "account; parents are header accounts", field="parent_code")
            if parent in seen:
                raise InvalidInput(f"GL account {account.code}: its parents form a cycle",
                                   field="parent_code")
            seen.add(parent)
            parent = node.parent_code


def check_rules(rules: Mapping[str, str], chart: Mapping[str, GLAccount]) -> None:
    """A product's rules name known roles and detail GL accounts."""
    for role, code in rules.items():
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; one of {sorted(ROLES)}",
                               field=f"rules.{role}")
        account = chart.get(code)
        if account is None:
            raise InvalidInput(f"no GL account {code!r}", field=f"rules.{role}")
        if account.usage != "detail":
            raise InvalidInput(f"GL account {code} is a header account; rules map to detail "
                               "accounts", field=f"rules.{role}")
