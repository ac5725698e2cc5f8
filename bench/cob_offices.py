"""The close-of-business benchmark's portfolio spread over an organisation like the
sector's largest association: 12 regions, 650 branches (one in ten with a mobile unit),
four loan officers per branch; each loan (and its client) lands in one office with one
officer, by a hash of its id. After the nights, :func:`rollup_check` compares the
per-office snapshot summed over every branch with the institution's to the centime."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

REGIONS, BRANCHES, OFFICERS_PER_BRANCH = 12, 650, 4

SPREAD = f"""
WITH placed AS (
    SELECT id, client_id, abs(hashtextextended(id, 7)) AS h FROM loans
), office AS (
    SELECT id, client_id, h % {BRANCHES} AS b, (h / {BRANCHES}) % 20 AS m,
           (h / ({BRANCHES} * 20)) % {OFFICERS_PER_BRANCH} AS o FROM placed
)
UPDATE loans l
   SET office_id = CASE WHEN o.b % 10 = 0 AND o.m = 0 THEN 'm-' || o.b ELSE 'b-' || o.b END,
       office_path = 'ho/r-' || (o.b % {REGIONS}) || '/b-' || o.b
                     || CASE WHEN o.b % 10 = 0 AND o.m = 0 THEN '/m-' || o.b ELSE '' END,
       officer_id = 'lo-' || o.b || '-' || o.o
  FROM office o WHERE o.id = l.id
"""


async def spread_over_offices(conn: asyncpg.Connection) -> None:
    """Offices, officers and every seeded loan placed (set-based, before ANALYZE)."""
    await conn.execute(SPREAD)
    await conn.execute(
        "INSERT INTO office_projection (office_id, kind, name, path)"
        f" SELECT 'r-' || r, 'region', 'Region ' || r, 'ho/r-' || r"
        f"   FROM generate_series(0, {REGIONS - 1}) r"
        " UNION ALL SELECT 'b-' || b, 'branch', 'Branch ' || b,"
        f"        'ho/r-' || (b % {REGIONS}) || '/b-' || b"
        f"   FROM generate_series(0, {BRANCHES - 1}) b"
        " UNION ALL SELECT 'm-' || b, 'mobile_unit', 'Mobile unit ' || b,"
        f"        'ho/r-' || (b % {REGIONS}) || '/b-' || b || '/m-' || b"
        f"   FROM generate_series(0, {BRANCHES - 1}, 10) b"
        " ON CONFLICT DO NOTHING")


async def rollup_check(url: str, schema: str, business_date: date) -> dict[str, Any]:
    """Every branch's roll-up summed, against the institution's snapshot of the date."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        inst = await conn.fetchrow(
            "SELECT loans_active, outstanding_principal, par1_principal, par30_principal,"
            " par90_principal FROM portfolio_snapshots WHERE business_date = $1",
            business_date)
        branches = await conn.fetchrow(
            "SELECT count(DISTINCT split_part(office_path, '/', 3)) AS branches,"
            " count(DISTINCT officer_id) AS officers, count(*) AS rows,"
            " sum(loans_active) AS loans_active,"
            " sum(outstanding_principal) AS outstanding_principal,"
            " sum(par1_principal) AS par1_principal, sum(par30_principal) AS par30_principal,"
            " sum(par90_principal) AS par90_principal FROM portfolio_office_snapshots"
            " WHERE business_date = $1 AND split_part(office_path, '/', 3) <> ''",
            business_date)
    finally:
        await conn.close()
    if inst is None or branches is None:
        return {"equal": False, "detail": "no snapshot"}
    keys = ("loans_active", "outstanding_principal", "par1_principal", "par30_principal",
            "par90_principal")
    return {"equal": all(inst[k] == branches[k] for k in keys),
            "branches": branches["branches"], "officers": branches["officers"],
            "rows": branches["rows"],
            "institution": {k: str(inst[k]) for k in keys},
            "sum_of_branches": {k: str(branches[k]) for k in keys}}
