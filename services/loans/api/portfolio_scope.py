"""The portfolio by office (subtree roll-up), loan officer and product.

``GET /v1/portfolio`` and ``GET /v1/portfolio/history`` take ``office_id``, ``officer_id``
and ``product_id``; a token scoped to an office sees its subtree only (an office or
officer outside it answers 404, like another partner's data). With no filter and no
office on the token, the routes answer the institution's figures as before.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import Field

from services.loans.api.schemas import Money, Out, PortfolioOut, Ratio, SnapshotOut
from services.loans.api.views import BUCKETS, ratio
from services.loans.repository import Conn, org
from services.loans.repository import cob_runs as runs
from services.loans.repository import portfolio_snapshot as snaps
from shared.auth import Principal
from shared.errors import NotFound


class ComponentsOut(Out):
    principal: Money
    interest: Money
    fees: Money
    penalties: Money
    total: Money


class DisbursedOut(Out):
    loans: int
    principal: Money


class CollectedOut(Out):
    payments: int
    amount: Money


class RestructuredOut(Out):
    loans: int
    principal: Money
    ratio: Ratio


class ScopeOut(Out):
    office_id: str | None
    office_path: str | None
    officer_id: str | None
    product_id: str | None


class ScopedSnapshotOut(SnapshotOut):
    """One close of business's figures; with the per-office extras when scoped."""

    outstanding: ComponentsOut | None = None
    disbursed: DisbursedOut | None = Field(default=None,
                                           description="loans disbursed that business day")
    collected: CollectedOut | None = Field(default=None, description=(
        "repayments applied that business day"))
    restructured: RestructuredOut | None = None


class ScopedSnapshotPage(Out):
    items: list[ScopedSnapshotOut]


class ScopedPortfolioOut(PortfolioOut):
    scope: ScopeOut | None = Field(default=None, description=(
        "the office subtree, officer and product the figures cover (null: the institution)"))
    last_snapshot: ScopedSnapshotOut | None


def snapshot_json(row: dict[str, Any]) -> dict[str, Any]:
    """A roll-up in the institution snapshot's shape, with the per-office extras."""
    total = Decimal(row["outstanding_principal"] or 0)
    money = {c: Decimal(row[c] or 0) for c in snaps.COLUMNS if c not in (
        "loans_active", "disbursed_loans", "collected_count", "restructured_loans",
        *(f"{b}_loans" for b in snaps.BUCKET_COLUMNS.values()))}
    return {
        "business_date": row["business_date"].isoformat(),
        "loans_active": int(row["loans_active"] or 0),
        "outstanding_principal": str(total),
        "par": {f"par{n}": {"principal": str(money[f"par{n}_principal"]),
                            "ratio": ratio(money[f"par{n}_principal"], total)}
                for n in (1, 30, 90)},
        "arrears_buckets": {b: {"loans": int(row[f"{c}_loans"] or 0),
                                "principal": str(money[f"{c}_principal"])}
                            for b, c in snaps.BUCKET_COLUMNS.items()},
        "outstanding": {
            "principal": str(total), "interest": str(money["outstanding_interest"]),
            "fees": str(money["outstanding_fees"]),
            "penalties": str(money["outstanding_penalties"]),
            "total": str(total + money["outstanding_interest"] + money["outstanding_fees"]
                         + money["outstanding_penalties"])},
        "disbursed": {"loans": int(row["disbursed_loans"] or 0),
                      "principal": str(money["disbursed_principal"])},
        "collected": {"payments": int(row["collected_count"] or 0),
                      "amount": str(money["collected_amount"])},
        "restructured": {"loans": int(row["restructured_loans"] or 0),
                         "principal": str(money["restructured_principal"]),
                         "ratio": ratio(money["restructured_principal"], total)},
    }


def is_scoped(who: Principal, *filters: str | None) -> bool:
    return who.office_path is not None or any(f is not None for f in filters)


async def resolve(conn: Conn, who: Principal, office_id: str | None,
                  officer_id: str | None) -> dict[str, Any]:
    """The office path to roll up (the token's own when none is named)."""
    path = who.office_path
    if office_id is not None:
        office = await org.office(conn, office_id)
        if office is None or not who.can_see_office(office.path):
            raise NotFound(f"office {office_id} not found", field="office_id")
        path = office.path
    if officer_id is not None and who.office_path is not None:
        staff = await org.staff(conn, officer_id)
        if staff is None or not who.can_see_office(staff.office_path):
            raise NotFound(f"officer {officer_id} not found", field="officer_id")
    return {"office_id": office_id or who.office_id, "office_path": path,
            "officer_id": officer_id}


async def portfolio(conn: Conn, who: Principal, office_id: str | None,
                    officer_id: str | None, product_id: str | None) -> dict[str, Any]:
    scope = await resolve(conn, who, office_id, officer_id)
    live, buckets, statuses = await snaps.live(conn, scope["office_path"], officer_id,
                                                product_id)
    last = await runs.last_completed(conn)
    latest = await snaps.rollups(conn, office_path=scope["office_path"],
                                 officer_id=officer_id, product_id=product_id, limit=1)
    by_bucket = {r["bucket"]: r for r in buckets}
    total = live["outstanding"]
    return {
        "currency": "MAD",
        "as_of_business_date": last["business_date"].isoformat() if last else None,
        "loans_active": live["loans_active"],
        "outstanding_principal": str(total),
        "par": {f"par{n}": {"principal": str(live[f"par{n}"]),
                            "ratio": ratio(live[f"par{n}"], total)} for n in (1, 30, 90)},
        "arrears_buckets": {b: {"loans": by_bucket[b]["loans"] if b in by_bucket else 0,
                                "principal": str(by_bucket[b]["principal"])
                                if b in by_bucket else "0.00"} for b in BUCKETS},
        "loans_by_status": statuses,
        "last_snapshot": snapshot_json(latest[0]) if latest else None,
        "scope": {**scope, "product_id": product_id},
    }


async def history(conn: Conn, who: Principal, office_id: str | None, officer_id: str | None,
                  product_id: str | None, limit: int) -> dict[str, Any]:
    scope = await resolve(conn, who, office_id, officer_id)
    rows = await snaps.rollups(conn, office_path=scope["office_path"], officer_id=officer_id,
                               product_id=product_id, limit=limit)
    return {"items": [snapshot_json(r) for r in rows]}
