"""``python -m simulators.smsc`` as a real process, driven by the service's SMPP client."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.notifications.domain.encoding import encode
from services.notifications.domain.messages import Receipt
from services.notifications.providers.base import ProviderError
from services.notifications.providers.http_aggregator import HttpAggregatorProvider
from services.notifications.providers.inbound import InboundQueue, Reply
from services.notifications.providers.smpp_client import SmppProvider
from simulators.smsc.runner import free_port, running
from tests.infra import ROOT
from tests.kafka_facts import until

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
            async def ready() -> bool:
                try:
                    return (await client.get(f"{url}/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(ready, "the simulator ready", timeout_s=10)
        yield smpp, url
    finally:
        proc.terminate()
        proc.wait(10)


async def test_bind_submit_receipt_keepalive_reply_and_unbind(simulator: tuple[int, str]
                                                             ) -> None:
    smpp, url = simulator
    inbound = InboundQueue(100)
    client = SmppProvider("smsc", "127.0.0.1", smpp, system_id="noria", password="pw",
                          timeout_s=2, enquire_link_s=0.2, inbound=inbound)

    heard: list[Receipt | Reply] = []

    async def hear(count: int) -> list[Receipt | Reply]:
        """Until ``count`` more items were queued by the client; those items."""
        start = len(heard)

        async def enough() -> bool:
            items = await inbound.take(100) if len(inbound) else []
            inbound.done(items)
            heard.extend(item for _, item in items)
            return len(heard) - start >= count

        await until(enough, f"{count} receipts or replies")
        return heard[start:]

    async def enquire_links(count: int) -> bool:
        return (await sim.get("/stats")).json()["enquire_link"] >= count

    async with httpx.AsyncClient(base_url=url) as sim:
        text = "Rappel: 1 250,00 MAD dus le 12/04/2027 {réf. [A-7] ~ €}" * 4
        ids = await client.submit("+212600000042", encode(text), reference="msg-9")
        assert len(ids) == 2
        receipts = [r for r in await hear(2) if isinstance(r, Receipt)]
        assert {r.provider_message_id for r in receipts} == set(ids)
        assert {r.stat for r in receipts} == {"DELIVRD"} and len(receipts) == 2
        await until(lambda: enquire_links(3), "several enquire_link round trips")
        got = (await sim.get("/messages", params={"to": "+212600000042"})).json()
        assert [(m["text"], m["parts"]) for m in got] == [(text, 2)]

        await sim.post("/control", json={"queue_full_next": 1})
        with pytest.raises(ProviderError) as err:
            await client.submit("+212600000042", encode("x"), reference="msg-1")
        assert err.value.kind == "throttled" and "ESME_RMSGQFUL" in err.value.detail

        resp = await sim.post("/mo", json={"sender": "+212600000042", "text": "توقف"})
        assert resp.status_code == 200
        assert await hear(1) == [Reply("+212600000042", "توقف")]
        await client.close()

        async def unbound() -> bool:
            return (await sim.get("/sessions")).json() == []

        await until(unbound, "the session closed")


async def test_every_attempt_of_a_message_carries_its_reference_and_is_sent_once() -> None:
    """A repeat (the first attempt's answer was lost) is recognised by the SMSC and the
    aggregator from the message's reference: the phone gets the message once."""
    smpp_phone, http_phone = "+212600000043", "+212600000044"
    text = encode("Votre echeance de 468,20 MAD est due le 12/04/2027. Merci. " * 3)
    mine, another = str(uuid.uuid4()), str(uuid.uuid4())
    async with running() as smsc, httpx.AsyncClient(base_url=smsc.http_url) as sim:
        client = SmppProvider("smsc", "127.0.0.1", smsc.smpp_port, system_id="noria",
                              password="pw", timeout_s=2, inbound=InboundQueue(100))
        http = HttpAggregatorProvider("aggregator", f"{smsc.http_url}/aggregator")
        try:
            first = await client.submit(smpp_phone, text, reference=mine)
            assert len(first) == 2
            assert await client.submit(smpp_phone, text, reference=mine) == first
            assert await client.submit(smpp_phone, text, reference=another) != first
            one = await http.submit(http_phone, text, reference=mine)
            assert await http.submit(http_phone, text, reference=mine) == one
        finally:
            await client.close()
            await http.close()
        smpp_got = (await sim.get("/messages", params={"to": smpp_phone})).json()
        http_got = (await sim.get("/messages", params={"to": http_phone})).json()
    # (parts, submissions that carried it): the repeat was counted, not sent
    assert [(m["parts"], m["submits"]) for m in smpp_got] == [(2, 4), (2, 2)]
    assert [(m["parts"], m["submits"]) for m in http_got] == [(2, 2)]
