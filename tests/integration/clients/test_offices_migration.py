"""Migration 0003 on a database that already holds clients and groups: they all go to
the head office with no loan officer, and the hierarchy starts from that one office."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

import services.clients
from shared.migrations import migrate
from tests.conftest import SchemaFactory

pytestmark = pytest.mark.integration

MIGRATIONS = Path(services.clients.__file__).parent / "migrations"


async def test_existing_clients_and_groups_land_in_the_head_office(
        isolated_schema: SchemaFactory, tmp_path: Path) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for name in ("0001_clients.sql", "0002_canonical_identifiers.sql"):
        shutil.copy(MIGRATIONS / name, before)
    iso = await isolated_schema("clorg", before)
    conn = await asyncpg.connect(iso.dsn)
    try:
        for i in range(3):
            await conn.execute(
                "INSERT INTO clients (id, partner_id, full_name, national_id, phone,"
                " date_of_birth, language, sms_consent, onboarded_by)"
                " VALUES ($1, 'p', 'N', $2, $3, '1990-01-01', 'fr', true, 'u')",
                f"c{i}", f"BE10000{i}", f"+21261111111{i}")
        await conn.execute("INSERT INTO groups (id, partner_id, name, leader_id, formed_by)"
                           " VALUES ('g1', 'p', 'Tafoukt', 'c0', 'u')")
        applied = await migrate(iso.dsn, iso.schema, MIGRATIONS)
        assert "service/0003_offices_and_staff.sql" in applied
        clients = await conn.fetch("SELECT office_id, office_path, officer_id FROM clients")
        assert [tuple(r) for r in clients] == [("ho", "ho", None)] * 3
        group = await conn.fetchrow("SELECT office_id, office_path, officer_id FROM groups")
        assert group is not None and tuple(group) == ("ho", "ho", None)
        offices = await conn.fetch("SELECT id, kind, parent_id, path FROM offices")
        assert [tuple(r) for r in offices] == [("ho", "head_office", None, "ho")]
        with pytest.raises(asyncpg.UniqueViolationError):  # one head office only
            await conn.execute("INSERT INTO offices (id, kind, name, path, opened_by)"
                               " VALUES ('ho2', 'head_office', 'Other', 'ho2', 'x')")
        with pytest.raises(asyncpg.CheckViolationError):  # a region has a parent
            await conn.execute("INSERT INTO offices (id, kind, name, path, opened_by)"
                               " VALUES ('r-x', 'region', 'X', 'r-x', 'x')")
    finally:
        await conn.close()
