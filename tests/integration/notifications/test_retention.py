"""The platform's retention job prunes the service's applied delivery receipts once they
are older than its age, and never a receipt still waiting to be applied."""

from __future__ import annotations

import uuid

import pytest

from services.notifications.bootstrap import RETENTION
from shared.app import retention_job
from tests.integration.notifications.conftest import Rig

pytestmark = pytest.mark.integration


async def test_old_applied_receipts_are_pruned_unapplied_ones_never(rig: Rig) -> None:
    assert ("receipts", "applied_at") in RETENTION
    job = retention_job(rig.runtime)  # as the service runs it: its settings, its tables
    days = int(job.keep_days)
    tag = uuid.uuid4().hex[:8]
    rows = {  # provider message id: (received, applied) days ago
        f"old-applied-{tag}": (days + 5, days + 1),
        f"old-unapplied-{tag}": (days + 30, None),
        f"late-applied-{tag}": (days + 30, days - 1),  # received long ago, applied lately
        f"new-applied-{tag}": (0, 0),
    }
    async with rig.pool.acquire() as conn:
        for pid, (received, applied) in rows.items():
            await conn.execute(
                "INSERT INTO receipts (provider, provider_message_id, stat, error,"
                " received_at, applied_at) VALUES ('smsc', $1, 'DELIVRD', '',"
                " now() - make_interval(days => $2),"
                " now() - make_interval(days => $3::int))",
                pid, received, applied)

    async def ran() -> bool:  # None while the service's own round holds the job
        return await job.run_once() is not None

    await rig.until(ran, "a retention round")
    async with rig.pool.acquire() as conn:
        left = {r["provider_message_id"] for r in await conn.fetch(
            "SELECT provider_message_id FROM receipts WHERE provider_message_id = ANY($1)",
            list(rows))}
    assert left == {f"old-unapplied-{tag}", f"late-applied-{tag}", f"new-applied-{tag}"}
