"""Pure shaping of the services' JSON into what the pages show (no I/O)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from console.i18n import to_decimal

BUCKET_ORDER = ("1-30", "31-60", "61-90", "90+")


def first(data: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present in ``data`` (services name a figure differently)."""
    for key in keys:
        if key in data and data[key] is not None:
            return data[key]
    return None


def par_values(data: dict[str, Any]) -> dict[str, Any]:
    """PAR ratios by days (``par1``/``par30``/``par90``) and the principal at risk."""
    nested = data.get("par") if isinstance(data.get("par"), dict) else {}
    out: dict[str, Any] = {}
    for days in ("1", "30", "90"):
        value = first(data, f"par{days}", f"par_{days}", f"PAR{days}")
        if value is None and nested:
            value = first(nested, f"par{days}", days, f"par_{days}")
        if isinstance(value, dict):
            out[f"par{days}_principal"] = first(value, "principal", "amount")
            value = first(value, "ratio", "value")
        out[f"par{days}"] = value
    return out


def arrears_buckets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{bucket, loans, principal}]`` in the standard order, from a dict or a list."""
    raw = first(data, "arrears_buckets", "buckets", "arrears")
    rows: list[dict[str, Any]] = []
    if isinstance(raw, dict):
        for name, value in raw.items():
            if isinstance(value, dict):
                rows.append({"bucket": name,
                             "loans": first(value, "loans", "count", "loan_count"),
                             "principal": first(value, "outstanding_principal", "principal",
                                                "outstanding", "amount")})
            else:
                rows.append({"bucket": name, "loans": None, "principal": value})
    elif isinstance(raw, list):
        for value in raw:
            if isinstance(value, dict):
                rows.append({"bucket": str(first(value, "bucket", "name", "range")),
                             "loans": first(value, "loans", "count", "loan_count"),
                             "principal": first(value, "outstanding_principal", "principal",
                                                "outstanding", "amount")})
    rows = [r for r in rows if r["bucket"] != "current"]
    order = {b: i for i, b in enumerate(BUCKET_ORDER)}
    rows.sort(key=lambda r: order.get(str(r["bucket"]), len(order)))
    return rows


def trend(snapshots: list[dict[str, Any]]) -> tuple[list[str], dict[str, list[float]]]:
    """PAR1/30/90 in % per business date, oldest first."""
    ordered = sorted(snapshots, key=lambda s: str(first(s, "business_date", "date") or ""))
    labels = [str(first(s, "business_date", "date") or "")[5:] for s in ordered]
    series: dict[str, list[float]] = {"PAR1": [], "PAR30": [], "PAR90": []}
    for snap in ordered:
        par = par_values(snap)
        for days in ("1", "30", "90"):
            value = to_decimal(par[f"par{days}"]) or Decimal(0)
            series[f"PAR{days}"].append(float(value * 100))
    return labels, series


def group_dead_letters(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
    """``(service, topic, reason, count)`` most numerous first."""
    counts: Counter[tuple[str, str, str]] = Counter(
        (str(r.get("service", "")), str(r.get("topic", "")), str(r.get("reason", "")))
        for r in rows)
    return [(s, t, r, n) for (s, t, r), n in counts.most_common()]


def oldest(rows: list[dict[str, Any]], *keys: str) -> dict[str, Any] | None:
    dated = [r for r in rows if first(r, *keys)]
    return min(dated, key=lambda r: str(first(r, *keys))) if dated else None


def total(rows: list[dict[str, Any]], *keys: str) -> Decimal:
    return sum((to_decimal(first(r, *keys)) or Decimal(0) for r in rows), Decimal(0))


def timeline(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A saga's steps or history, whatever the service calls the list."""
    raw = first(data, "timeline", "history", "steps", "events", "transitions")
    return [e for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []
