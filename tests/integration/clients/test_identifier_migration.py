"""Migration 0002 on rows the old rules let in: canonical values, one holder each."""

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
ARABIC_INDIC, EXTENDED_ARABIC_INDIC, FULL_WIDTH = 0x0660, 0x06F0, 0xFF10


def script(text: str, zero: int) -> str:
    """``text`` with every ASCII digit written in the script whose zero is ``zero``."""
    return "".join(chr(zero + int(ch)) if ch.isdigit() else ch for ch in text)


async def test_stored_identifiers_become_canonical_and_twins_are_flagged(
        isolated_schema: SchemaFactory, tmp_path: Path) -> None:
    before = tmp_path / "before"
    before.mkdir()
    shutil.copy(MIGRATIONS / "0001_clients.sql", before)
    iso = await isolated_schema("clmig", before)
    conn = await asyncpg.connect(iso.dsn)
    try:
        ar, ext, fw = ARABIC_INDIC, EXTENDED_ARABIC_INDIC, FULL_WIDTH
        rows = [  # id, national_id, phone (as the old rules stored them)
            ("a-ascii", "BE123456", "+212611111111"),
            ("b-arabic-twin", script("BE123456", ar), "+212622222222"),  # CIN twin of a
            ("c-arabic-alone", script("CD123", ext), "+2126" + script("33333333", ar)),
            ("d-old-1", script("EF44", ar), "+212644444444"),
            ("e-old-2", script("EF44", fw), "+212655555555"),  # twin of d, younger
            ("f-phone-twin", "GH55", "+2126" + script("11111111", ar)),  # phone twin of a
        ]
        for i, (cid, cin, phone) in enumerate(rows):
            await conn.execute(
                "INSERT INTO clients (id, partner_id, full_name, national_id, phone,"
                " date_of_birth, language, sms_consent, onboarded_by, created_at)"
                " VALUES ($1, 'p', 'N', $2, $3, '1990-01-01', 'fr', true, 'u',"
                " now() - make_interval(mins => $4))", cid, cin, phone, 100 - i)
        await migrate(iso.dsn, iso.schema, MIGRATIONS)
        got = {r["id"]: (r["national_id"], r["phone"], r["identity_duplicate_of"])
               for r in await conn.fetch(
                   "SELECT id, national_id, phone, identity_duplicate_of FROM clients")}
        assert got == {
            "a-ascii": ("BE123456", "+212611111111", None),
            "b-arabic-twin": (script("BE123456", ARABIC_INDIC), "+212622222222", "a-ascii"),
            "c-arabic-alone": ("CD123", "+212633333333", None),
            "d-old-1": ("EF44", "+212644444444", None),
            "e-old-2": (script("EF44", FULL_WIDTH), "+212655555555", "d-old-1"),
            "f-phone-twin": ("GH55", "+2126" + script("11111111", ARABIC_INDIC), "a-ascii"),
        }
        # A flagged twin still takes ordinary changes (an operator decides it later).
        await conn.execute("UPDATE clients SET kyc_status = 'rejected', kyc_reason = 'twin'"
                           " WHERE id = 'b-arabic-twin'")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO clients (id, partner_id, full_name, national_id, phone,"
                " date_of_birth, language, sms_consent, onboarded_by)"
                " VALUES ('z', 'p', 'N', $1, '+212699999999', '1990-01-01', 'fr', true, 'u')",
                script("ZZ1", ARABIC_INDIC))
    finally:
        await conn.close()
