"""Close of business as an operator drives it over HTTP: POST, then poll the run."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


async def wait_for_run(client: httpx.AsyncClient, headers: dict[str, str], location: str,
                       timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    run: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        resp = await client.get(location, headers=headers)
        assert resp.status_code == 200, resp.text
        run = resp.json()
        if run["status"] != "running":
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"close of business still running after {timeout_s}s: {run}")


async def close_of_business(client: httpx.AsyncClient, headers: dict[str, str], day: str
                            ) -> dict[str, Any]:
    """Run close of business for ``day`` to its end; the finished run."""
    resp = await client.post("/v1/close-of-business", headers=headers,
                             json={"business_date": day})
    assert resp.status_code in (200, 202), resp.text
    assert resp.headers["location"] == f"/v1/close-of-business/{resp.json()['run_id']}"
    return await wait_for_run(client, headers, resp.headers["location"])
