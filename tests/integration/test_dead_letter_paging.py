"""GET /v1/dead-letters pages with a keyset cursor (``after``) and filters by message key.

The platform's dead-letter router alone, over a schema of its own with the platform
migrations: the rows are planted as the inbox consumer records them.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.auth import ROLE_SCOPES, verifier_for
from shared.db import create_pool
from shared.dlq import dlq_router
from shared.http import install_error_handlers
from shared.settings import OidcSettings
from tests.identity import mint_token

pytestmark = pytest.mark.integration


def flat(pages: list[list[int]]) -> list[int]:
    return [i for page in pages for i in page]


async def test_dead_letters_page_by_cursor_and_filter_by_key(
        isolated_schema: Callable[..., Any]) -> None:
    iso = await isolated_schema("dlq_paging")
    pool = await create_pool(iso.dsn, schema=iso.schema, max_size=2)
    try:
        async with pool.acquire() as conn:
            ids = [await conn.fetchval(
                "INSERT INTO dead_letters (consumer, topic, kafka_partition, kafka_offset,"
                " message_key, message_type, value, reason, error, replayed_at)"
                " VALUES ('g', 't', 0, $1, $2, 'Unheard', $3, 'malformed', 'x',"
                " CASE WHEN $4 THEN now() END) RETURNING id",
                n, f"loan-{n % 3}", b"{}", n == 4) for n in range(10)]
        app = FastAPI()
        app.state.token_verifier = verifier_for(OidcSettings())
        app.state.runtime = SimpleNamespace(pool=pool)
        install_error_handlers(app)
        app.include_router(dlq_router())
        token = mint_token(sub="amina", scopes=ROLE_SCOPES["operator"])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://svc",
                                     headers={"Authorization": f"Bearer {token}"}) as api:

            async def walk(**params: Any) -> list[list[int]]:
                pages: list[list[int]] = []
                after = None
                while True:
                    query = {**params, "limit": 3, **({"after": after} if after else {})}
                    resp = await api.get("/v1/dead-letters", params=query)
                    assert resp.status_code == 200, resp.text
                    page = [d["id"] for d in resp.json()]
                    pages.append(page)
                    if len(page) < 3:
                        return pages
                    after = page[-1]

            pending = [i for n, i in enumerate(ids) if n != 4]
            assert await walk() == [pending[0:3], pending[3:6], pending[6:9], []]
            assert flat(await walk(pending_only="false")) == ids
            by_key = flat(await walk(key="loan-1", pending_only="false"))
            assert by_key == [ids[1], ids[4], ids[7]]
            assert flat(await walk(key="loan-1")) == [ids[1], ids[7]]
            assert await walk(key="no-such-key") == [[]]
            refused = await api.get("/v1/dead-letters", params={"after": -1})
            assert refused.status_code == 422
            assert refused.headers["content-type"].startswith("application/problem+json")
    finally:
        await pool.close()
