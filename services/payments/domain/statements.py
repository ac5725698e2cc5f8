"""Financial statements from GL balances (pure): trial balance, income statement,
balance sheet, and their CSV form.

Input is what the ledger's lines add up to per GL account (debits, credits) over the
span a statement covers; the chart gives each account its type, names and parent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.payments.domain.accounts import Side
from services.payments.domain.chart import GLAccount, GLType

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Totals:
    debits: Decimal
    credits: Decimal


def balance(gl_type: GLType, totals: Totals) -> Decimal:
    """The balance in the account type's normal direction (a contra account, such as the
    allowance under assets, comes out negative)."""
    if gl_type.normal is Side.DEBIT:
        return totals.debits - totals.credits
    return totals.credits - totals.debits


def _row(account: GLAccount, totals: Totals) -> dict[str, Any]:
    return {"code": account.code, "name_fr": account.name_fr, "name_ar": account.name_ar,
            "type": account.type.value, "parent_code": account.parent_code,
            "regulator_code": account.regulator_code,
            "debits": totals.debits, "credits": totals.credits,
            "balance": balance(account.type, totals)}


def _unknown(code: str) -> GLAccount:
    return GLAccount(code, code, code, GLType.LIABILITY)


def trial_balance(chart: Mapping[str, GLAccount],
                  totals: Mapping[str, Totals]) -> dict[str, Any]:
    """Every GL account with postings: debits, credits, balance; and both totals."""
    rows = [_row(chart.get(code) or _unknown(code), t) for code, t in sorted(totals.items())]
    debits = sum((t.debits for t in totals.values()), ZERO)
    credits = sum((t.credits for t in totals.values()), ZERO)
    return {"accounts": rows, "total_debits": debits, "total_credits": credits,
            "balanced": debits == credits}


def _section(chart: Mapping[str, GLAccount], totals: Mapping[str, Totals],
             types: Iterable[GLType]) -> tuple[list[dict[str, Any]], Decimal]:
    wanted = set(types)
    rows = [_row(chart.get(code) or _unknown(code), t) for code, t in sorted(totals.items())
            if (chart.get(code) or _unknown(code)).type in wanted]
    return rows, sum((r["balance"] for r in rows), ZERO)


def income_statement(chart: Mapping[str, GLAccount],
                     totals: Mapping[str, Totals]) -> dict[str, Any]:
    income, total_income = _section(chart, totals, [GLType.INCOME])
    expenses, total_expenses = _section(chart, totals, [GLType.EXPENSE])
    return {"income": income, "expenses": expenses, "total_income": total_income,
            "total_expenses": total_expenses, "net_income": total_income - total_expenses}


def balance_sheet(chart: Mapping[str, GLAccount],
                  totals: Mapping[str, Totals]) -> dict[str, Any]:
    """Assets = liabilities + equity, where equity includes the result not yet moved to
    retained earnings by a year-end close (income less expenses to date)."""
    assets, total_assets = _section(chart, totals, [GLType.ASSET])
    liabilities, total_liabilities = _section(chart, totals, [GLType.LIABILITY])
    equity, total_equity = _section(chart, totals, [GLType.EQUITY])
    result = income_statement(chart, totals)["net_income"]
    return {"assets": assets, "liabilities": liabilities, "equity": equity,
            "unclosed_result": result, "total_assets": total_assets,
            "total_liabilities": total_liabilities,
            "total_equity": total_equity + result,
            "balanced": total_assets == total_liabilities + total_equity + result}


def to_csv(statement: str, data: Mapping[str, Any]) -> str:
    """One line per account (section, code, names, debits, credits, balance), then the
    totals, as ``section,code,...`` rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "code", "name_fr", "name_ar", "type", "regulator_code",
                     "debits", "credits", "balance"])
    sections = {"trial_balance": ["accounts"], "income_statement": ["income", "expenses"],
                "balance_sheet": ["assets", "liabilities", "equity"]}[statement]
    for section in sections:
        for r in data[section]:
            writer.writerow([section, r["code"], r["name_fr"], r["name_ar"], r["type"],
                             r["regulator_code"] or "", _s(r["debits"]), _s(r["credits"]),
                             _s(r["balance"])])
    for key, value in data.items():
        if isinstance(value, Decimal | bool):
            writer.writerow(["total", key, "", "", "", "", "", "", _s(value)])
    return out.getvalue()


def _s(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.quantize(Decimal("0.01")), "f")
    return str(value).lower() if isinstance(value, bool) else str(value)
