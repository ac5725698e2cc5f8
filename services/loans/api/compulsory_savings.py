"""``/v1/products/{id}/compulsory-savings``: what a product requires held in compulsory
savings before a loan of it is paid out (the disbursement saga's ``hold_savings`` step)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field

from services.loans.api.deps import runtime
from services.loans.api.schemas import Body, DecimalString, Money, Out, Rate
from services.loans.domain.compulsory_savings import CompulsorySavingsRule
from services.loans.repository import compulsory_savings as repo
from services.loans.repository import products as products_repo
from shared.auth import Principal, require
from shared.errors import NotFound
from shared.money import PositiveAmount

router = APIRouter(prefix="/v1/products", tags=["products"])


class CompulsorySavingsIn(Body):
    share_of_principal: DecimalString | None = None
    amount: PositiveAmount | None = None
    savings_product_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class CompulsorySavingsOut(Out):
    product_id: str
    share_of_principal: Rate | None
    amount: Money | None
    savings_product_id: str | None
    example: dict[str, str] = Field(description="what a loan of 10 000.00 must hold")


def _out(product_id: str, rule: CompulsorySavingsRule) -> dict[str, Any]:
    return {"product_id": product_id,
            "share_of_principal": None if rule.share_of_principal is None
            else str(rule.share_of_principal),
            "amount": None if rule.amount is None else str(rule.amount),
            "savings_product_id": rule.savings_product_id,
            "example": {"principal": "10000.00",
                        "required": str(rule.required(Decimal("10000.00")))}}


async def _product(request: Request, product_id: str) -> None:
    async with runtime(request).pool.acquire() as conn:
        if not await products_repo.versions(conn, product_id):
            raise NotFound(f"product {product_id} does not exist", field="product_id")


@router.put("/{product_id}/compulsory-savings", response_model=CompulsorySavingsOut)
async def put_rule(product_id: str, body: CompulsorySavingsIn, request: Request,
                   who: Annotated[Principal, require("products:write")]) -> dict[str, Any]:
    """Set (or change) the product's compulsory savings; loans approved from now on hold
    it before their payout."""
    rule = CompulsorySavingsRule(body.share_of_principal, body.amount, body.savings_product_id)
    rule.validate()
    await _product(request, product_id)
    async with runtime(request).uow() as uow:
        await repo.put(uow.conn, product_id, rule, who.sub)
        await uow.commit()
    return _out(product_id, rule)


@router.get("/{product_id}/compulsory-savings", response_model=CompulsorySavingsOut)
async def get_rule(product_id: str, request: Request,
                   who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
    async with runtime(request).pool.acquire() as conn:
        rule = await repo.get(conn, product_id)
    if rule is None:
        raise NotFound(f"product {product_id} requires no compulsory savings",
                       field="product_id")
    return _out(product_id, rule)
