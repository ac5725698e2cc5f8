"""Savings products (operators write; every savings:read token reads)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request

from services.savings.api.deps import runtime
from services.savings.api.schemas import ProductDetailOut, ProductIn, ProductOut, ProductPage
from services.savings.handlers import products as handlers
from services.savings.repository import products as repo
from shared.auth import Principal, require
from shared.errors import NotFound

router = APIRouter(prefix="/v1/savings/products", tags=["savings products"])

Writer = Annotated[Principal, require("products:write")]
Reader = Annotated[Principal, require("savings:read")]


@router.post("", status_code=201, response_model=ProductOut)
async def create_product(body: ProductIn, request: Request, who: Writer) -> dict[str, Any]:
    terms = body.terms()
    async with runtime(request).uow() as uow:
        product = await handlers.create(uow, who.sub, body.name, terms)
        await uow.commit()
    return product.to_json()


@router.put("/{product_id}", response_model=ProductOut)
async def update_product(product_id: str, body: ProductIn, request: Request, who: Writer
                         ) -> dict[str, Any]:
    """Publish a new version; accounts already opened keep the version they have."""
    terms = body.terms()
    async with runtime(request).uow() as uow:
        product = await handlers.new_version(uow, who.sub, product_id, body.name, terms)
        await uow.commit()
    return product.to_json()


@router.get("", response_model=ProductPage)
async def list_products(request: Request, who: Reader) -> dict[str, Any]:
    async with runtime(request).pool.acquire() as conn:
        items = await repo.list_current(conn)
    return {"items": [p.to_json() for p in items]}


@router.get("/{product_id}", response_model=ProductDetailOut)
async def get_product(product_id: str, request: Request, who: Reader) -> dict[str, Any]:
    async with runtime(request).pool.acquire() as conn:
        versions = await repo.versions(conn, product_id)
    if not versions:
        raise NotFound(f"product {product_id} does not exist", field="product_id")
    current = next(v for v in versions if v.is_current)
    return {**current.to_json(), "versions": [v.to_json() for v in versions]}
