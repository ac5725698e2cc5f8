"""Migrations runner: ordered ``NNNN_name.sql`` files per schema.

Each schema gets the platform migrations (``shared/sql``) and then its service's
own. Applied names and checksums are kept in ``schema_migrations``; an advisory
lock keeps two runners (two replicas starting together) from racing, and
``lock_timeout`` stops a migration from queueing behind live traffic forever. A
migration has no statement timeout.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from shared.db import NO_STATEMENT_TIMEOUT, connect

log = logging.getLogger("noria.migrations")
PLATFORM_DIR = Path(__file__).parent / "sql"
_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(Exception):
    pass


def discover(service_dir: Path | None) -> list[Migration]:
    found: list[Migration] = []
    for prefix, folder in (("platform", PLATFORM_DIR), ("service", service_dir)):
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.sql")):
            if not _NAME.match(path.name):
                raise MigrationError(f"{path}: migration files are named NNNN_name.sql")
            found.append(Migration(f"{prefix}/{path.name}", path.read_text()))
    return found


async def migrate(
    dsn: str, schema: str, service_dir: Path | None, *, lock_timeout: str = "10s"
) -> list[str]:
    """Apply pending migrations to ``schema``; return the names applied."""
    # no statement timeout (a migration may rewrite a large table); lock_timeout stays
    conn = await connect(dsn, schema=schema, limits=NO_STATEMENT_TIMEOUT)
    applied_now: list[str] = []
    try:
        await conn.execute(f"SET lock_timeout = '{lock_timeout}'")
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"noria.migrations.{schema}")
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " name text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch(f'SELECT name, checksum FROM "{schema}".schema_migrations')
        done = {r["name"]: r["checksum"] for r in rows}
        for migration in discover(service_dir):
            if migration.name in done:
                if done[migration.name] != migration.checksum:
                    raise MigrationError(
                        f"{schema}: {migration.name} was changed after it was applied; "
                        "add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    f'INSERT INTO "{schema}".schema_migrations (name, checksum) VALUES ($1, $2)',
                    migration.name, migration.checksum,
                )
            log.info("applied %s to schema %s", migration.name, schema)
            applied_now.append(migration.name)
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock_all()")
        finally:
            await conn.close()
    return applied_now
