"""Savings products: create and version."""

from __future__ import annotations

import uuid

from services.savings.domain.products import Terms
from services.savings.repository import products as repo
from services.savings.repository.products import ProductVersion
from shared.errors import Conflict, InvalidInput, NotFound
from shared.uow import UnitOfWork


def _name(name: str) -> str:
    clean = name.strip()
    if not clean:
        raise InvalidInput("a product needs a name", field="name")
    return clean


async def create(uow: UnitOfWork, by: str, name: str, terms: Terms) -> ProductVersion:
    return await repo.insert_version(uow.conn, str(uuid.uuid4()), _name(name), terms, by)


async def new_version(uow: UnitOfWork, by: str, product_id: str, name: str, terms: Terms
                      ) -> ProductVersion:
    """Publish a new version; accounts already opened keep the version they have."""
    current = await repo.lock_current(uow.conn, product_id)
    if current is None:
        raise NotFound(f"product {product_id} does not exist", field="product_id")
    if current.terms.kind != terms.kind:
        raise Conflict(f"a {current.terms.kind} product stays {current.terms.kind}",
                       field="kind")
    return await repo.insert_version(uow.conn, product_id, _name(name), terms, by)
