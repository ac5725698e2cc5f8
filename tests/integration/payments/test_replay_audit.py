"""GET /v1/dead-letters/replays: who replayed which dead letter, when, with what outcome.

Runs a payments app of its own (own schema, topic prefix and consumer group), so
the dead letter it plants does not show in the other payments tests' schema.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.payments.bootstrap import build_spec
from services.payments.settings import PaymentsSettings, ProviderConfig
from shared.app import create_app
from shared.auth import ROLE_SCOPES
from shared.contracts import loans, payments
from shared.kafka import ensure_topics
from tests.identity import mint_token
from tests.infra import Infra, delete_topics

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).resolve().parents[3] / "services/payments/migrations"


def auth(role: str, sub: str, partner: str | None = None) -> dict[str, str]:
    token = mint_token(sub=sub, scopes=ROLE_SCOPES[role],
                       partner_id=partner)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def prefix(infra: Infra) -> AsyncIterator[str]:
    """The test's topic prefix; its topics are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    yield prefix
    await delete_topics(infra.kafka_bootstrap, prefix)


async def test_replays_are_listed_with_who_when_and_outcome(
        infra: Infra, isolated_schema: Callable[..., Any], prefix: str) -> None:
    iso = await isolated_schema("payments_dlq", MIGRATIONS)
    settings = PaymentsSettings(
        database_url=iso.dsn, db_schema=iso.schema, kafka_bootstrap=infra.kafka_bootstrap,
        providers={"sim": ProviderConfig(base_url="http://127.0.0.1:9", opening_float=0)},
        topic_prefix=prefix)
    await ensure_topics(infra.kafka_bootstrap, [settings.topic(t) for t in (
        payments.COMMANDS, payments.EVENTS, loans.EVENTS)], partitions=4)
    app = create_app(build_spec(settings))
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        pool = app.state.runtime.pool
        async with pool.acquire() as conn:
            # a record the group could not process, as the inbox consumer records one
            dead_id = await conn.fetchval(
                "INSERT INTO dead_letters (consumer, topic, kafka_partition, kafka_offset,"
                " message_key, message_type, value, headers, reason, error)"
                " VALUES ($1, $2, 0, 7, 'loan-x', 'Unheard', $3, '[]', 'malformed', 'x')"
                " RETURNING id", f"{settings.topic_prefix}payments", settings.topic(loans.EVENTS),
                b"not json at all")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://payments") as api:
            empty = await api.get("/v1/dead-letters/replays", headers=auth("operator", "amina"))
            assert empty.status_code == 200, empty.text
            assert empty.json() == {"items": [], "next_before": None}

            replays = []
            for sub in ("amina", "youssef"):
                resp = await api.post(f"/v1/dead-letters/{dead_id}/replay",
                                      headers=auth("operator", sub))
                assert resp.status_code == 200, resp.text
                replays.append(resp.json())

            resp = await api.get("/v1/dead-letters/replays", headers=auth("operator", "amina"))
            items = resp.json()["items"]
            assert [(i["dead_letter_id"], i["replayed_by"], i["outcome"]) for i in items] == [
                (dead_id, "youssef", replays[1]["outcome"]),
                (dead_id, "amina", replays[0]["outcome"])]  # newest first
            assert items[0]["topic"] == settings.topic(loans.EVENTS)
            assert items[0]["consumer"] == f"{settings.topic_prefix}payments"
            assert items[0]["replayed_at"] >= items[1]["replayed_at"]

            page = await api.get("/v1/dead-letters/replays", headers=auth("operator", "a"),
                                 params={"limit": 1})
            assert [i["replayed_by"] for i in page.json()["items"]] == ["youssef"]
            older = await api.get("/v1/dead-letters/replays", headers=auth("operator", "a"),
                                  params={"limit": 1, "before": page.json()["next_before"]})
            assert [i["replayed_by"] for i in older.json()["items"]] == ["amina"]
            other = await api.get("/v1/dead-letters/replays", headers=auth("operator", "a"),
                                  params={"dead_letter_id": dead_id + 1000})
            assert other.json()["items"] == []

            partner = await api.get("/v1/dead-letters/replays",
                                    headers=auth("partner", "p", "partner-a"))
            assert partner.status_code == 403
            assert (await api.get("/v1/dead-letters/replays")).status_code == 401
            bad = await api.get("/v1/dead-letters/replays", headers=auth("operator", "a"),
                                params={"before": "2" * 30})
            assert bad.status_code == 422
