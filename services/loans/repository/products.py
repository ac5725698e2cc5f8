"""Product versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.loans.domain.products import ProductTerms
from services.loans.domain.terms_codec import terms_from_dict, terms_to_dict
from services.loans.repository import Conn


@dataclass(frozen=True)
class ProductVersion:
    id: str
    version: int
    name: str
    currency: str
    terms: ProductTerms
    is_current: bool
    created_by: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "name": self.name,
                "currency": self.currency, "is_current": self.is_current,
                "created_by": self.created_by, "created_at": self.created_at.isoformat(),
                **terms_to_dict(self.terms)}


def _row(r: asyncpg.Record) -> ProductVersion:
    return ProductVersion(r["id"], r["version"], r["name"], r["currency"],
                          terms_from_dict(r["terms"]), r["is_current"], r["created_by"],
                          r["created_at"])


_COLS = "id, version, name, currency, terms, is_current, created_by, created_at"


async def insert_version(conn: Conn, product_id: str, name: str, currency: str,
                         terms: ProductTerms, created_by: str) -> ProductVersion:
    """Add the next version of ``product_id`` and make it the current one."""
    current = await conn.fetchval(
        "SELECT max(version) FROM products WHERE id = $1", product_id)
    await conn.execute("UPDATE products SET is_current = false WHERE id = $1 AND is_current",
                       product_id)
    row = await conn.fetchrow(
        f"INSERT INTO products (id, version, name, currency, terms, created_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLS}",
        product_id, (current or 0) + 1, name, currency, terms_to_dict(terms), created_by)
    assert row is not None
    return _row(row)


async def lock_product(conn: Conn, product_id: str) -> bool:
    """Serialise versioning of one product; False if it does not exist."""
    return await conn.fetchval(
        "SELECT 1 FROM products WHERE id = $1 AND is_current FOR UPDATE", product_id
    ) is not None


async def get(conn: Conn, product_id: str, version: int | None = None
              ) -> ProductVersion | None:
    if version is None:
        row = await conn.fetchrow(
            f"SELECT {_COLS} FROM products WHERE id = $1 AND is_current", product_id)
    else:
        row = await conn.fetchrow(
            f"SELECT {_COLS} FROM products WHERE id = $1 AND version = $2", product_id, version)
    return None if row is None else _row(row)


_TERMS: dict[tuple[str, int, datetime], ProductTerms] = {}
_TERMS_MAX = 4096


async def version_terms(conn: Conn, product_id: str, version: int,
                        stamp: datetime | None = None) -> ProductTerms | None:
    """The terms of one product version, kept in process once read.

    A version's row is never changed (a change is a new version, ``insert_version``), so
    its terms are cached under (id, version, created_at): ``stamp`` is the version's
    ``created_at`` as the caller read it beside its loan, and a hit costs no round trip.
    The stored instant tells apart two rows that merely share an id and a version (another
    schema's or a re-created product's); without ``stamp`` the row is read."""
    if stamp is not None:
        hit = _TERMS.get((product_id, version, stamp))
        if hit is not None:
            return hit
    row = await conn.fetchrow(
        "SELECT terms, created_at FROM products WHERE id = $1 AND version = $2",
        product_id, version)
    if row is None:
        return None
    terms = terms_from_dict(row["terms"])
    if len(_TERMS) >= _TERMS_MAX:
        _TERMS.clear()
    _TERMS[(product_id, version, row["created_at"])] = terms
    return terms


async def list_current(conn: Conn) -> list[ProductVersion]:
    rows = await conn.fetch(f"SELECT {_COLS} FROM products WHERE is_current ORDER BY created_at")
    return [_row(r) for r in rows]


async def versions(conn: Conn, product_id: str) -> list[ProductVersion]:
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM products WHERE id = $1 ORDER BY version", product_id)
    return [_row(r) for r in rows]
