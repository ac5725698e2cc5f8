"""An SMPP 3.4 client (ESME): one bound transceiver session to an SMSC.

It submits messages (long ones as UDH-concatenated parts), keeps the link alive
with ``enquire_link``, answers the SMSC's ``deliver_sm`` (delivery receipts and
replies) at once, leaving them on the inbound queue for the sending worker to store
(``providers/inbound.py``), and reconnects when the link drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import struct

from services.notifications.domain.encoding import EncodedText, from_wire, to_wire
from services.notifications.domain.messages import Receipt, parse_receipt
from services.notifications.domain.phones import heard_phone
from services.notifications.providers import smpp_pdu as p
from services.notifications.providers.base import ProviderError
from services.notifications.providers.inbound import InboundQueue, Reply

log = logging.getLogger("noria.notifications.smpp")


class SmppProvider:
    def __init__(self, name: str, host: str, port: int, *, system_id: str, password: str,
                 source_addr: str = "Noria", timeout_s: float = 5.0,
                 enquire_link_s: float = 20.0, inbound: InboundQueue) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.system_id = system_id
        self.password = password
        self.source_addr = source_addr
        self.timeout_s = timeout_s
        self.enquire_link_s = enquire_link_s
        self.inbound = inbound
        self._seq = itertools.count(1)
        self._pending: dict[int, asyncio.Future[p.Pdu]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._bound = False

    # -- session ---------------------------------------------------------------------
    async def start(self) -> None:
        with contextlib.suppress(OSError, ProviderError, TimeoutError):
            await self._ensure_bound()

    async def _ensure_bound(self) -> asyncio.StreamWriter:
        async with self._lock:
            if self._bound and self._writer is not None and not self._writer.is_closing():
                return self._writer
            await self._drop()
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.timeout_s)
            except (OSError, TimeoutError) as exc:
                raise ProviderError("temporary", f"cannot reach SMSC {self.host}:{self.port}: "
                                    f"{exc or type(exc).__name__}") from None
            self._writer = writer
            self._tasks = [asyncio.create_task(self._read_loop(reader), name="smpp-read")]
            resp = await self._request(p.BIND_TRANSCEIVER,
                                       p.bind_body(self.system_id, self.password, "noria"))
            if resp.status != p.ESME_ROK:
                await self._drop()
                raise ProviderError("temporary", f"bind refused: {p.status_name(resp.status)}")
            self._bound = True
            self._tasks.append(asyncio.create_task(self._keepalive(), name="smpp-enquire"))
            log.info("bound to SMSC %s as %s", self.name, self.system_id)
            return writer

    async def _drop(self) -> None:
        self._bound = False
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._tasks = []
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._writer = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ProviderError("temporary", "SMPP link closed"))
        self._pending.clear()

    async def close(self) -> None:
        if self._bound and self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._request(p.UNBIND, b""), 2)
        await self._drop()

    async def _send(self, pdu: p.Pdu) -> None:
        if self._writer is None:
            raise ProviderError("temporary", "SMPP link closed")
        self._writer.write(pdu.encode())
        await self._writer.drain()

    async def _request(self, command_id: int, body: bytes) -> p.Pdu:
        seq = next(self._seq) & 0x7FFFFFFF
        fut: asyncio.Future[p.Pdu] = asyncio.get_running_loop().create_future()
        self._pending[seq] = fut
        try:
            await self._send(p.Pdu(command_id, 0, seq, body))
            return await asyncio.wait_for(fut, self.timeout_s)
        except TimeoutError:
            raise ProviderError("temporary", f"SMSC {self.name} did not answer in "
                                f"{self.timeout_s:g}s") from None
        finally:
            self._pending.pop(seq, None)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.enquire_link_s)
            try:
                await self._request(p.ENQUIRE_LINK, b"")
            except ProviderError as exc:
                log.warning("enquire_link to %s failed (%s); reconnecting", self.name, exc)
                self._bound = False
                return

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                header = await reader.readexactly(p.HEADER.size)
                length, command_id, status, seq = p.decode_header(header)
                body = await reader.readexactly(length - p.HEADER.size)
                pdu = p.Pdu(command_id, status, seq, body)
                if command_id & p.RESP:
                    fut = self._pending.get(seq)
                    if fut is not None and not fut.done():
                        fut.set_result(pdu)
                    continue
                await self._on_request(pdu)
        except (asyncio.IncompleteReadError, ConnectionError, p.PduError) as exc:
            log.warning("SMPP link to %s lost: %s", self.name, exc)
        finally:
            self._bound = False
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ProviderError("temporary", "SMPP link closed"))

    async def _on_request(self, pdu: p.Pdu) -> None:
        if pdu.command_id == p.ENQUIRE_LINK:
            await self._send(p.Pdu(p.ENQUIRE_LINK | p.RESP, 0, pdu.sequence))
        elif pdu.command_id == p.UNBIND:
            await self._send(p.Pdu(p.UNBIND | p.RESP, 0, pdu.sequence))
            self._bound = False
        elif pdu.command_id == p.DELIVER_SM:
            # Never awaits the database: what was heard is queued (or refused when the
            # queue is full: the SMSC delivers it again) and answered at once, so the
            # submit_sm_resp behind it are read without delay.
            try:
                accepted = self._on_deliver(p.ShortMessage.decode(pdu.body))
                status = p.ESME_ROK if accepted else p.ESME_RX_T_APPN
            except Exception:
                log.exception("could not read a deliver_sm from %s", self.name)
                status = p.ESME_RX_P_APPN  # malformed: delivering it again will not help
            await self._send(p.Pdu(p.DELIVER_SM | p.RESP, status, pdu.sequence,
                                   p.message_id_body("")))
        else:
            await self._send(p.Pdu(p.GENERIC_NACK, p.ESME_RINVCMDID, pdu.sequence))

    def _on_deliver(self, sm: p.ShortMessage) -> bool:
        """Offer a receipt or a reply to the inbound queue; False when it is full."""
        _, payload = sm.user_data
        text = from_wire(payload, sm.data_coding)
        if sm.esm_class & p.ESM_RECEIPT:
            receipt = parse_receipt(text)
            if receipt is None and p.TLV_RECEIPTED_MESSAGE_ID in sm.tlvs:
                receipt = Receipt(sm.tlvs[p.TLV_RECEIPTED_MESSAGE_ID].rstrip(b"\x00").decode(),
                                  "UNKNOWN")
            return receipt is None or self.inbound.offer(self.name, receipt)
        phone = heard_phone(sm.source_addr if sm.source_addr.startswith("+")
                            else f"+{sm.source_addr}", source=f"{self.name} deliver_sm")
        return self.inbound.offer(self.name, Reply(phone, text))

    # -- submitting ------------------------------------------------------------------
    async def submit(self, phone: str, message: EncodedText, reference: str) -> list[str]:
        await self._ensure_bound()
        coding = p.DC_DEFAULT if message.encoding == "GSM-7" else p.DC_UCS2
        total = len(message.parts)
        number = message_number(reference)
        # Every attempt for one message carries the same user_message_reference and the
        # same concatenation reference, so an SMSC (or a handset) sees a repeat.
        tlvs = {p.TLV_USER_MESSAGE_REFERENCE: struct.pack(">H", number)}
        ids: list[str] = []
        for seq, part in enumerate(message.parts, start=1):
            payload = to_wire(part, message.encoding)
            esm = 0
            if total > 1:
                payload = p.concat_udh(number, total, seq) + payload
                esm = p.ESM_UDHI
            sm = p.ShortMessage(self.source_addr, phone.removeprefix("+"), payload,
                                esm_class=esm, data_coding=coding, registered_delivery=1,
                                tlvs=tlvs)
            resp = await self._request(p.SUBMIT_SM, sm.encode())
            if resp.status != p.ESME_ROK:
                name = p.status_name(resp.status)
                if resp.status in p.THROTTLING_STATUSES:
                    raise ProviderError("throttled", f"{name} on part {seq}/{total}")
                if resp.status in p.PERMANENT_STATUSES:
                    raise ProviderError("permanent", f"{name} on part {seq}/{total}")
                raise ProviderError("temporary", f"{name} on part {seq}/{total}")
            ids.append(p.parse_message_id(resp.body))
        return ids

    async def poll(self, provider_ids: list[str]) -> list[Receipt]:
        return []  # receipts arrive as deliver_sm


def message_number(reference: str) -> int:
    """The 16-bit number SMPP has room for (``user_message_reference``), taken from a
    message's own reference: the same for every attempt of that message."""
    return int.from_bytes(hashlib.blake2b(reference.encode(), digest_size=2).digest(), "big")
