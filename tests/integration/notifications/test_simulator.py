"""``python -m simulators.smsc`` as a real process, driven by the service's SMPP client."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from services.notifications.domain.encoding import encode
from services.notifications.domain.messages import Receipt
from services.notifications.providers.base import ProviderError
from services.notifications.providers.smpp_client import SmppProvider
from simulators.smsc.runner import free_port
from tests.infra import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[int, str]]:
    smpp, http = free_port(), free_port()
    env = {**os.environ, "NORIA_SMSC_SMPP_PORT": str(smpp), "NORIA_SMSC_HTTP_PORT": str(http)}
    proc = subprocess.Popen([sys.executable, "-m", "simulators.smsc"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{http}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    if (await client.get(f"{url}/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the simulator did not become ready")
        yield smpp, url
    finally:
        proc.terminate()
        proc.wait(10)


async def test_bind_submit_receipt_keepalive_reply_and_unbind(simulator: tuple[int, str]
                                                             ) -> None:
    smpp, url = simulator
    receipts: list[Receipt] = []
    replies: list[tuple[str, str]] = []

    async def on_receipt(provider: str, receipt: Receipt) -> None:
        receipts.append(receipt)

    async def on_reply(provider: str, phone: str, text: str) -> None:
        replies.append((phone, text))

    client = SmppProvider("smsc", "127.0.0.1", smpp, system_id="noria", password="pw",
                          timeout_s=2, enquire_link_s=0.2, on_receipt=on_receipt,
                          on_reply=on_reply)
    async with httpx.AsyncClient(base_url=url) as sim:
        text = "Rappel: 1 250,00 MAD dus le 12/04/2027 {réf. [A-7] ~ €}" * 4
        ids = await client.submit("+212600000042", encode(text), reference=9)
        assert len(ids) == 2
        await asyncio.sleep(0.8)  # several enquire_link round trips
        assert {r.provider_message_id for r in receipts} == set(ids)
        assert {r.stat for r in receipts} == {"DELIVRD"}
        got = (await sim.get("/messages", params={"to": "+212600000042"})).json()
        assert [(m["text"], m["parts"]) for m in got] == [(text, 2)]

        await sim.post("/control", json={"queue_full_next": 1})
        with pytest.raises(ProviderError) as err:
            await client.submit("+212600000042", encode("x"), reference=1)
        assert err.value.kind == "throttled" and "ESME_RMSGQFUL" in err.value.detail

        resp = await sim.post("/mo", json={"sender": "+212600000042", "text": "توقف"})
        assert resp.status_code == 200
        await asyncio.sleep(0.3)
        assert replies == [("+212600000042", "توقف")]
        await client.close()
        await asyncio.sleep(0.2)
        assert (await sim.get("/sessions")).json() == []
