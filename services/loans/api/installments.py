"""Installments due on a date: the operations console's "due today"."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from services.loans.api import portfolio_scope
from services.loans.api.deps import runtime
from services.loans.api.schemas import DuePage
from services.loans.repository import due_installments as due_repo
from shared.auth import Principal, require
from shared.clock import today
from shared.errors import InvalidInput

router = APIRouter(prefix="/v1/installments", tags=["installments"])
ZERO = Decimal("0.00")
INT4_MAX = 2**31 - 1
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(value: str | None) -> date:
    if value is None:
        return today()  # the institution's business date (Africa/Casablanca)
    try:
        if not _ISO_DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date (YYYY-MM-DD)", field="date") from None


def encode_cursor(loan_id: str, number: int) -> str:
    raw = json.dumps([loan_id, number], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        loan_id, number = json.loads(raw)
        if (isinstance(loan_id, str) and isinstance(number, int)
                and not isinstance(number, bool) and 0 <= number <= INT4_MAX
                and "\x00" not in loan_id and loan_id.encode()):   # no lone surrogate
            return loan_id, number
    except (ValueError, TypeError, binascii.Error):   # UnicodeError is a ValueError
        pass
    raise InvalidInput("not a cursor this listing returned", field="cursor")


def encode_due_cursor(due: date, loan_id: str, number: int) -> str:
    raw = json.dumps(["due_date", due.isoformat(), loan_id, number],
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_due_cursor(cursor: str) -> tuple[date, str, int]:
    """A cursor of the listing by due date (a cursor of the other order is refused)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, due, loan_id, number = json.loads(raw)
        if (kind == "due_date" and isinstance(due, str) and _ISO_DATE.match(due)
                and isinstance(loan_id, str) and isinstance(number, int)
                and not isinstance(number, bool) and 0 <= number <= INT4_MAX
                and "\x00" not in loan_id and loan_id.encode()):   # no lone surrogate
            return date.fromisoformat(due), loan_id, number
    except (ValueError, TypeError, binascii.Error):   # UnicodeError is a ValueError
        pass
    raise InvalidInput("not a cursor this listing returned (order due_date)", field="cursor")


def item_json(r: Any) -> dict[str, Any]:
    total, paid = r["total"], r["paid"]
    return {
        "loan_id": r["loan_id"], "client_id": r["client_id"], "partner_id": r["partner_id"],
        "installment": r["number"], "due_date": r["due_date"].isoformat(),
        "total": str(total), "paid": str(paid), "amount_due": str(max(total - paid, ZERO)),
        "status": due_repo.status_of(total, paid), "days_in_arrears": r["days_in_arrears"],
        "days_late": r["days_late"], "reference": r["reference"],
    }


@router.get("/due", response_model=DuePage)
async def installments_due(
    request: Request, who: Annotated[Principal, require("loans:read")],
    date: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    scope: Literal["unpaid", "on_date"] = "unpaid",
    office_id: Annotated[str | None, Query(max_length=100, description=(
        "this office and every office below it"))] = None,
    officer_id: Annotated[str | None, Query(max_length=100, description=(
        "the loans of this loan officer"))] = None,
    order: Annotated[Literal["loan", "due_date"], Query(description=(
        "``loan`` (default): by loan and installment; ``due_date``: oldest due date "
        "first"))] = "loan",
) -> dict[str, Any]:
    """``scope=unpaid`` (default): everything unpaid on active loans and due on or before
    ``date`` (default: today), with days late -- the collections list. ``scope=on_date``:
    every installment due on ``date`` itself, paid or not. A partner's own loans only, an
    office's token its subtree's (an office or officer outside it: 404); ``totals`` cover
    every page."""
    day = parse_date(date)
    by_due = order == "due_date"
    after_due = decode_due_cursor(cursor) if cursor is not None and by_due else None
    after = decode_cursor(cursor) if cursor is not None and not by_due else None
    partner = None if who.sees_all_tenants else who.partner_id or "-"
    async with runtime(request).pool.acquire() as conn, conn.transaction(
            isolation="repeatable_read", readonly=True):   # the page and totals agree
        unpaid = scope == "unpaid"
        office_path = who.office_path
        if office_id is not None or officer_id is not None:
            office_path = (await portfolio_scope.resolve(conn, who, office_id,
                                                         officer_id))["office_path"]
        if by_due:
            rows = await due_repo.page_by_due_date(
                conn, day, partner, after_due, limit + 1, unpaid=unpaid,
                office_path=office_path, officer_id=officer_id)
        else:
            rows = await due_repo.page(conn, day, partner, after, limit + 1, unpaid=unpaid,
                                       office_path=office_path, officer_id=officer_id)
        totals = await due_repo.totals(conn, day, partner, unpaid=unpaid,
                                       office_path=office_path, officer_id=officer_id)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = (encode_due_cursor(last["due_date"], last["loan_id"], last["number"])
                       if by_due else encode_cursor(last["loan_id"], last["number"]))
    return {
        "date": day.isoformat(), "currency": "MAD",
        "items": [item_json(r) for r in rows],
        "totals": totals,
        "next_cursor": next_cursor,
    }
