"""Reconciliation of the ledger's provider movements with the provider's statement (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Item:
    reference: str
    kind: str
    amount: Decimal
    detail: dict[str, Any]


def reconcile(ours: list[Item], theirs: list[Item]) -> dict[str, Any]:
    """Match by provider transaction reference → matched / mismatch / one-sided."""
    by_ref = {t.reference: t for t in theirs}
    matched: list[dict[str, Any]] = []
    mismatched: list[dict[str, Any]] = []
    ours_only: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in ours:
        other = by_ref.get(item.reference)
        if other is None:
            ours_only.append({"reference": item.reference, "kind": item.kind,
                              "amount": item.amount, **item.detail})
            continue
        seen.add(item.reference)
        row = {"reference": item.reference, "kind": item.kind, "amount": item.amount,
               **item.detail}
        if other.amount == item.amount:
            matched.append(row)
        else:
            mismatched.append({**row, "ledger_amount": item.amount,
                               "provider_amount": other.amount})
    theirs_only = [{"reference": t.reference, "kind": t.kind, "amount": t.amount, **t.detail}
                   for t in theirs if t.reference not in seen]
    return {
        "matched": matched, "amount_mismatch": mismatched, "ours_only": ours_only,
        "theirs_only": theirs_only,
        "summary": {"matched": len(matched), "amount_mismatch": len(mismatched),
                    "ours_only": len(ours_only), "theirs_only": len(theirs_only),
                    "reconciled": not (mismatched or ours_only or theirs_only)},
    }


@dataclass(frozen=True)
class Alert:
    """One difference with a provider's statement, raised once per provider, business
    day, kind of mismatch and reference."""

    mismatch: str  # ours_only, theirs_only, amount_mismatch
    reference: str
    kind: str
    loan_id: str
    ours: Decimal | None
    theirs: Decimal | None


def alerts(result: dict[str, Any]) -> list[Alert]:
    """What :func:`reconcile` found that does not match, as alerts."""
    out: list[Alert] = []
    for row in result["ours_only"]:
        out.append(Alert("ours_only", row["reference"], row["kind"],
                         str(row.get("loan_id") or ""), row["amount"], None))
    for row in result["theirs_only"]:
        out.append(Alert("theirs_only", row["reference"], row["kind"],
                         str(row.get("loan_id") or ""), None, row["amount"]))
    for row in result["amount_mismatch"]:
        out.append(Alert("amount_mismatch", row["reference"], row["kind"],
                         str(row.get("loan_id") or ""), row["ledger_amount"],
                         row["provider_amount"]))
    return out
