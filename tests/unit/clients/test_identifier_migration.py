"""Migration 0002 maps every digit the old onboarding rules could have stored."""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

import services.clients

SQL = (Path(services.clients.__file__).parent / "migrations"
       / "0002_canonical_identifiers.sql").read_text()


def test_the_migration_knows_every_run_of_non_ascii_decimal_digits() -> None:
    listed = {int(h, 16) for h in re.findall(r"x'([0-9A-F]{5})'::int", SQL)}
    # What the old rules accepted in a digit position: Python's \d, i.e. Unicode Nd.
    old_digits = {cp for cp in range(0x80, sys.maxunicode + 1)
                  if re.fullmatch(r"\d", chr(cp))}
    mapped = {z + d for z in listed for d in range(10)}
    assert old_digits <= mapped
    assert all(unicodedata.decimal(chr(z + d)) == d for z in listed for d in range(10))
