"""SMPP sessions over TCP against aiosmpplib.

- Noria's SMPP client (providers/smpp_client.py) bound to an SMSC whose every read
  and write is aiosmpplib's PDU codec (aiosmpplib ships no SMSC of its own).
- The SMSC simulator (simulators/smsc) driven by aiosmpplib's ESME as the client:
  bind, submit, delivery receipt, reply, unbind.

Every wait is for a PDU or a callback, bounded by a timeout; none sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiosmpplib import (
    ESME,
    NPI,
    TON,
    AbstractHook,
    BindTransceiver,
    BindTransceiverResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    OptionalParam,
    PhoneNumber,
    SmppMessage,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
)
from aiosmpplib.protocol import MESSAGE_TYPE_MAP, PDU_HEADER_LENGTH
from aiosmpplib.state import RECEIPTED_MESSAGE_ID, SAR_MSG_REF_NUM, SAR_SEGMENT_SEQNUM

from services.notifications.domain import encoding as enc
from services.notifications.domain.messages import Receipt
from services.notifications.providers.inbound import InboundQueue, Reply
from services.notifications.providers.smpp_client import SmppProvider
from simulators.smsc.server import Smsc

WAIT = 10.0
PHONE = "+212612345678"


# ---------------------------------------------------------------- an SMSC on aiosmpplib


class ReferenceSmsc:
    """A minimal SMSC: aiosmpplib decodes every PDU it reads and encodes every PDU it
    writes. What it read is queued for the test, in order."""

    def __init__(self) -> None:
        self.heard: asyncio.Queue[SmppMessage] = asyncio.Queue()
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.ids = itertools.count(1)
        self.seq = itertools.count(1000)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port: int = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    async def send(self, msg: SmppMessage) -> None:
        assert self.writer is not None
        self.writer.write(msg.pdu())
        await self.writer.drain()

    async def request(self, msg: SmppMessage) -> int:
        msg.sequence_num = next(self.seq)
        await self.send(msg)
        return msg.sequence_num

    async def next(self, kind: type[SmppMessage]) -> Any:
        """The next PDU read, which must be a ``kind`` (keep-alives in between skipped)."""
        while True:
            msg = await asyncio.wait_for(self.heard.get(), WAIT)
            if isinstance(msg, kind):
                return msg
            if isinstance(msg, EnquireLink):
                continue
            raise AssertionError(f"expected {kind.__name__}, read {msg!r}")

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.connected.set()
        try:
            while True:
                header_data = await reader.readexactly(PDU_HEADER_LENGTH)
                header = SmppMessage.parse_header(header_data)
                raw = header_data + await reader.readexactly(header.pdu_length - PDU_HEADER_LENGTH)
                msg = MESSAGE_TYPE_MAP[header.smpp_command].from_pdu(raw, header, "gsm0338")
                await self.heard.put(msg)
                seq = header.sequence_num
                if isinstance(msg, BindTransceiver):
                    await self.send(BindTransceiverResp(sequence_num=seq, system_id="RefSMSC",
                                                        sc_interface_version=0x34))
                elif isinstance(msg, SubmitSm) and not isinstance(msg, DeliverSm):
                    await self.send(SubmitSmResp(sequence_num=seq,
                                                 message_id=f"ref{next(self.ids)}"))
                elif isinstance(msg, EnquireLink):
                    await self.send(EnquireLinkResp(sequence_num=seq))
                elif isinstance(msg, Unbind):
                    await self.send(UnbindResp(sequence_num=seq))
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def smsc() -> AsyncIterator[ReferenceSmsc]:
    server = ReferenceSmsc()
    await server.start()
    yield server
    await server.stop()


async def taken(inbound: InboundQueue) -> Receipt | Reply:
    [(provider, item)] = await asyncio.wait_for(inbound.take(1), WAIT)
    inbound.done([(provider, item)])
    assert provider == "ref"
    return item


def mo(text: str, *, esm_class: int = 0, params: list[OptionalParam] | None = None
       ) -> DeliverSm:
    return DeliverSm(short_message=text, esm_class=esm_class, optional_params=params,
                     source=PhoneNumber(PHONE[1:], TON.INTERNATIONAL, NPI.ISDN),
                     destination=PhoneNumber("Noria", TON.ALPHANUMERIC))


async def test_our_client_against_an_aiosmpplib_smsc(smsc: ReferenceSmsc) -> None:
    port = smsc.port
    inbound = InboundQueue(100)
    client = SmppProvider("ref", "127.0.0.1", port, system_id="noria", password="s3cret",
                          enquire_link_s=0.2, inbound=inbound)
    try:
        # bind + submit_sm, GSM-7 with extension characters
        text = "Votre échéance de 1500 MAD est due. Réf [A-12] {x} €"
        ids = await client.submit(PHONE, enc.encode(text), "msg-1")
        bind = await smsc.next(BindTransceiver)
        assert (bind.system_id, bind.password, bind.system_type) == ("noria", "s3cret", "noria")
        assert bind.interface_version == 0x34
        submit = await smsc.next(SubmitSm)
        assert ids == ["ref1"]
        assert submit.short_message == text and submit.encoding is None
        assert submit.destination == PhoneNumber(PHONE[1:], TON.INTERNATIONAL, NPI.ISDN)
        assert submit.source.number == "Noria" and submit.registered_delivery == 1

        # two UCS-2 parts, concatenated with one reference
        long_text = "مرحبا، قسطك الشهري 1500 درهم مستحق غدا. شكرا لثقتكم. " * 2
        message = enc.encode(long_text)
        assert message.encoding == "UCS-2" and message.segments == 2
        ids = await client.submit(PHONE, message, "msg-2")
        parts = [await smsc.next(SubmitSm) for _ in range(2)]
        assert ids == ["ref2", "ref3"]
        assert "".join(part.short_message for part in parts) == long_text
        refs = {{o.tag: o.value for o in part.optional_params}[SAR_MSG_REF_NUM]
                for part in parts}
        assert len(refs) == 1
        assert [{o.tag: o.value for o in part.optional_params}[SAR_SEGMENT_SEQNUM]
                for part in parts] == [1, 2]

        # a delivery receipt from the SMSC
        receipt_text = DeliverSm.encode_receipt({"id": "ref1", "sub": 1, "dlvrd": 1,
                                                 "stat": "DELIVRD", "err": 0, "text": text})
        seq = await smsc.request(mo(receipt_text, esm_class=0x04, params=[
            OptionalParam(RECEIPTED_MESSAGE_ID, "ref1")]))
        resp = await smsc.next(DeliverSmResp)
        assert resp.sequence_num == seq and resp.command_status == 0
        assert await taken(inbound) == Receipt("ref1", "DELIVRD", "000")

        # replies: short, and one longer than 254 octets (message_payload TLV)
        for reply in ("STOP", "Bonjour, je voudrais reporter mon echeance [pret 12]. " * 6):
            seq = await smsc.request(mo(reply))
            resp = await smsc.next(DeliverSmResp)
            assert resp.sequence_num == seq and resp.command_status == 0
            assert await taken(inbound) == Reply(PHONE, reply)

        # the SMSC's enquire_link is answered; ours reach the SMSC
        seq = await smsc.request(EnquireLink())
        assert (await smsc.next(EnquireLinkResp)).sequence_num == seq
        keepalive = await asyncio.wait_for(smsc.heard.get(), WAIT)
        while not isinstance(keepalive, EnquireLink):
            keepalive = await asyncio.wait_for(smsc.heard.get(), WAIT)
    finally:
        await client.close()
    assert isinstance(await smsc.next(Unbind), Unbind)


# ---------------------------------------------------------------- the simulator vs an ESME


class Recorder(AbstractHook):
    def __init__(self) -> None:
        self.heard: asyncio.Queue[SmppMessage] = asyncio.Queue()
        self.errors: list[Exception] = []

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        return None

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes,
                       client_id: str) -> None:
        if smpp_message is not None:
            await self.heard.put(smpp_message)

    async def send_error(self, smpp_message: SmppMessage, error: Exception,
                         client_id: str) -> None:
        self.errors.append(error)

    async def next(self, kind: type[SmppMessage], *, receipt: bool | None = None) -> Any:
        while True:
            msg = await asyncio.wait_for(self.heard.get(), WAIT)
            if isinstance(msg, kind) and (receipt is None or msg.is_receipt() == receipt):
                return msg


def submit(text: str, log_id: str, **kwargs: Any) -> SubmitSm:
    return SubmitSm(short_message=text, log_id=log_id,
                    source=PhoneNumber("Noria", TON.ALPHANUMERIC),
                    destination=PhoneNumber(PHONE[1:], TON.INTERNATIONAL, NPI.ISDN), **kwargs)


async def test_the_smsc_simulator_against_an_aiosmpplib_esme() -> None:
    simulator = Smsc()
    simulator.behaviour.receipt_delay_s = 0.0
    port = await simulator.start("127.0.0.1", 0)
    hook = Recorder()
    quiet = logging.NullHandler()
    esme = ESME("127.0.0.1", port, "conform", "s3cret", hook=hook, log_handler=quiet,
                log_level="WARNING", enquire_link_interval=30.0, socket_timeout=WAIT)
    running = asyncio.create_task(esme.start())
    try:
        cases = [
            ("m1", "Votre échéance de 1500 MAD est due. Réf [A-12] {x} €", None, "GSM-7"),
            ("m2", "مرحبا، قسطك 1500 درهم", "ucs2", "UCS-2"),
            ("m3", "Rappel: votre echeance [pret 12] arrive bientot. " * 6, None, "GSM-7"),
        ]
        for log_id, text, encoding, expected in cases:
            await esme.broker.enqueue(submit(text, log_id, encoding=encoding))
            resp = await hook.next(SubmitSmResp)
            assert resp.command_status == 0 and resp.message_id and resp.log_id == log_id
            got = simulator.messages(to=PHONE)[-1]
            assert (got["text"], got["encoding"], got["sender"]) == (text, expected, "Noria")
            assert got["part_ids"] == [resp.message_id]
            receipt = await hook.next(DeliverSm, receipt=True)
            fields = receipt.parse_receipt()
            assert (fields["id"], fields["stat"]) == (resp.message_id, "DELIVRD")
            assert receipt.log_id == log_id  # aiosmpplib matched it to its submit_sm

        # a reply from the phone reaches the ESME as a deliver_sm
        assert await simulator.inject_mo(PHONE, "STOP {merci}") == 1
        reply = await hook.next(DeliverSm, receipt=False)
        assert reply.short_message == "STOP {merci}" and reply.source.number == PHONE[1:]
        assert not hook.errors
    finally:
        await esme.stop()
        await asyncio.wait_for(running, WAIT)
        await simulator.stop()
