"""Loan products (operators write; every loans:read token reads)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request

from services.loans.api.deps import runtime
from services.loans.api.schemas import ProductDetailOut, ProductIn, ProductOut, ProductPage
from services.loans.handlers import applications
from services.loans.repository import products as products_repo
from shared.auth import Principal, require
from shared.errors import NotFound

router = APIRouter(prefix="/v1/products", tags=["products"])


@router.post("", status_code=201, response_model=ProductOut)
async def create_product(
    body: ProductIn, request: Request, who: Annotated[Principal, require("products:write")],
) -> dict[str, Any]:
    async with runtime(request).uow() as uow:
        product = await applications.create_product(uow, who.sub, body.name, body.terms())
        await uow.commit()
    return product.to_json()


@router.put("/{product_id}", response_model=ProductOut)
async def update_product(
    product_id: str, body: ProductIn, request: Request,
    who: Annotated[Principal, require("products:write")],
) -> dict[str, Any]:
    """Publish a new version; loans already applied for keep the version they have."""
    async with runtime(request).uow() as uow:
        product = await applications.update_product(uow, who.sub, product_id, body.name,
                                                    body.terms())
        await uow.commit()
    return product.to_json()


@router.get("", response_model=ProductPage)
async def list_products(
    request: Request, who: Annotated[Principal, require("loans:read")],
) -> dict[str, Any]:
    async with runtime(request).pool.acquire() as conn:
        items = await products_repo.list_current(conn)
    return {"items": [p.to_json() for p in items]}


@router.get("/{product_id}", response_model=ProductDetailOut)
async def get_product(
    product_id: str, request: Request, who: Annotated[Principal, require("loans:read")],
) -> dict[str, Any]:
    async with runtime(request).pool.acquire() as conn:
        versions = await products_repo.versions(conn, product_id)
    if not versions:
        raise NotFound(f"product {product_id} does not exist", field="product_id")
    current = next(v for v in versions if v.is_current)
    return {**current.to_json(), "versions": [v.to_json() for v in versions]}
