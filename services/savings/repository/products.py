"""Savings product versions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.savings.domain.products import Terms, terms_from_dict, terms_to_dict
from services.savings.repository import Conn


@dataclass(frozen=True)
class ProductVersion:
    id: str
    version: int
    name: str
    currency: str
    terms: Terms
    is_current: bool
    created_by: str
    created_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "name": self.name,
                "currency": self.currency, "is_current": self.is_current,
                "created_by": self.created_by, "created_at": self.created_at,
                "terms": terms_to_dict(self.terms)}


_COLS = "id, version, name, currency, terms, is_current, created_by, created_at"


def _row(r: asyncpg.Record) -> ProductVersion:
    return ProductVersion(r["id"], r["version"], r["name"], r["currency"],
                          terms_from_dict(dict(r["terms"])), r["is_current"], r["created_by"],
                          r["created_at"])


async def insert_version(conn: Conn, product_id: str, name: str, terms: Terms,
                         created_by: str) -> ProductVersion:
    current = await conn.fetchval("SELECT max(version) FROM products WHERE id = $1",
                                  product_id)
    await conn.execute("UPDATE products SET is_current = false WHERE id = $1 AND is_current",
                       product_id)
    row = await conn.fetchrow(
        "INSERT INTO products (id, version, name, kind, terms, created_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLS}",
        product_id, (current or 0) + 1, name, terms.kind, terms_to_dict(terms), created_by)
    assert row is not None
    return _row(row)


async def lock_current(conn: Conn, product_id: str) -> ProductVersion | None:
    row = await conn.fetchrow(
        f"SELECT {_COLS} FROM products WHERE id = $1 AND is_current FOR UPDATE", product_id)
    return None if row is None else _row(row)


async def get(conn: Conn, product_id: str, version: int | None = None) -> ProductVersion | None:
    if version is None:
        row = await conn.fetchrow(
            f"SELECT {_COLS} FROM products WHERE id = $1 AND is_current", product_id)
    else:
        row = await conn.fetchrow(
            f"SELECT {_COLS} FROM products WHERE id = $1 AND version = $2", product_id, version)
    return None if row is None else _row(row)


async def list_current(conn: Conn) -> list[ProductVersion]:
    rows = await conn.fetch(f"SELECT {_COLS} FROM products WHERE is_current ORDER BY created_at")
    return [_row(r) for r in rows]


async def versions(conn: Conn, product_id: str) -> list[ProductVersion]:
    rows = await conn.fetch(f"SELECT {_COLS} FROM products WHERE id = $1 ORDER BY version",
                            product_id)
    return [_row(r) for r in rows]
