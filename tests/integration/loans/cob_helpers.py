"""Close of business as an operator drives it over HTTP: POST, then poll the run."""

from __future__ import annotations

from typing import Any

import httpx

from tests.kafka_facts import until


async def wait_for_run(client: httpx.AsyncClient, headers: dict[str, str], location: str,
                       timeout_s: float = 60.0) -> dict[str, Any]:
    """The run once it has ended (succeeded or failed)."""
    async def ended() -> dict[str, Any] | None:
        resp = await client.get(location, headers=headers)
        assert resp.status_code == 200, resp.text
        run: dict[str, Any] = resp.json()
        return run if run["status"] != "running" else None
    return await until(ended, f"close of business {location} ended", timeout_s)


async def close_of_business(client: httpx.AsyncClient, headers: dict[str, str], day: str
                            ) -> dict[str, Any]:
    """Run close of business for ``day`` to its end; the finished run."""
    resp = await client.post("/v1/close-of-business", headers=headers,
                             json={"business_date": day})
    assert resp.status_code in (200, 202), resp.text
    assert resp.headers["location"] == f"/v1/close-of-business/{resp.json()['run_id']}"
    return await wait_for_run(client, headers, resp.headers["location"])
