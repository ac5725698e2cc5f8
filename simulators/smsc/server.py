"""The SMSC: SMPP sessions, what it received, receipts and the behaviour knobs.

Like a careful real SMSC, it de-duplicates a repeated submission: an SMPP
``submit_sm`` carrying the same ``user_message_reference`` and the same short message
to the same destination from the same ESME, or an HTTP submission with the same
``reference`` to the same phone, is answered with the id of the message already
accepted and sent no further (``Received.submits`` counts every copy). A
``deliver_sm`` answered with a temporary error (``ESME_RX_T_APPN``, or any error but
``ESME_RX_P_APPN``/``ESME_RX_R_APPN``) is delivered again ``redeliver_delay_s`` later.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import re
import struct
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from simulators.smsc import codec as c

log = logging.getLogger("noria.smsc")
RECEIPT_STATES = {"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5, "REJECTD": 8}
MAX_DELIVERIES = 50  # tries of one deliver_sm before the SMSC gives up on it


@dataclass
class Behaviour:
    """What the SMSC does with the next submissions (changed through POST /control)."""

    throttle_next: int = 0  # answer ESME_RTHROTTLED / HTTP 429 to the next N submissions
    queue_full_next: int = 0  # answer ESME_RMSGQFUL to the next N SMPP submissions
    fail_next: int = 0  # answer ESME_RSYSERR / HTTP 503 (temporary) to the next N
    reject_pattern: str | None = None  # destinations matching it: ESME_RINVDSTADR / HTTP 400
    receipt_delay_s: float = 0.1
    receipt_status: str = "DELIVRD"  # DELIVRD | UNDELIV | EXPIRED | REJECTD
    slow_smpp_s: float = 0.0  # wait this long before answering submit_sm
    slow_http_s: float = 0.0  # wait this long before answering the HTTP API
    redeliver_delay_s: float = 0.5  # a deliver_sm refused temporarily goes again this later


@dataclass
class Received:
    """One message as it reached a phone (parts reassembled)."""

    id: str
    to: str
    sender: str
    text: str
    encoding: str
    parts: int
    interface: str
    part_ids: list[str]
    status: str = "ENROUTE"
    submits: int = 0  # submissions that carried it: one per part, plus every repeat
    received_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())


class Session:
    def __init__(self, smsc: Smsc, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.smsc = smsc
        self.reader = reader
        self.writer = writer
        self.system_id: str | None = None
        self.seq = itertools.count(1)
        self.outstanding: dict[int, tuple[c.Sm, int]] = {}  # deliver_sm awaiting a resp

    @property
    def bound(self) -> bool:
        return self.system_id is not None and not self.writer.is_closing()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def deliver(self, sm: c.Sm, tries: int = 1) -> None:
        seq = next(self.seq)
        self.outstanding[seq] = (sm, tries)
        self.smsc.stats["deliver_sm"] += 1
        await self.send(c.pdu(c.DELIVER_SM, 0, seq, c.build_sm(sm)))

    def answered(self, cmd: int, status: int, seq: int) -> None:
        if cmd != c.DELIVER_SM | c.RESP:
            return  # enquire_link_resp
        sent = self.outstanding.pop(seq, None)
        if sent is None or status == c.OK:
            return
        sm, tries = sent
        self.smsc.stats["deliver_sm_refused"] += 1
        if status in (c.RX_P_APPN, c.RX_R_APPN) or tries >= MAX_DELIVERIES:
            log.info("deliver_sm to %s refused (0x%02X): dropped", self.system_id, status)
            return
        self.smsc.redeliver(self.system_id, sm, tries + 1)

    async def run(self) -> None:
        try:
            while True:
                header = await self.reader.readexactly(16)
                length, cmd, _status, seq = c.HEADER.unpack(header)
                if length < 16 or length > 65536:
                    await self.send(c.pdu(c.GENERIC_NACK, c.INVCMDID, seq))
                    return
                body = await self.reader.readexactly(length - 16)
                if cmd & c.RESP:
                    self.answered(cmd, _status, seq)
                    continue
                if not await self.handle(cmd, seq, body):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.smsc.sessions.discard(self)
            self.writer.close()

    async def handle(self, cmd: int, seq: int, body: bytes) -> bool:
        if cmd in (c.BIND_TRANSCEIVER, c.BIND_TRANSMITTER, c.BIND_RECEIVER):
            self.system_id = body.split(b"\x00", 1)[0].decode("latin-1")
            await self.send(c.pdu(cmd | c.RESP, c.OK, seq, c.cstr("NoriaSMSC")))
            await self.smsc.flush_pending(self)
            return True
        if cmd == c.ENQUIRE_LINK:
            self.smsc.stats["enquire_link"] += 1
            await self.send(c.pdu(cmd | c.RESP, c.OK, seq))
            return True
        if cmd == c.UNBIND:
            await self.send(c.pdu(cmd | c.RESP, c.OK, seq))
            return False
        if cmd == c.SUBMIT_SM:
            if not self.bound:
                await self.send(c.pdu(cmd | c.RESP, c.INVBNDSTS, seq))
                return True
            try:
                sm = c.parse_sm(body)
            except (ValueError, IndexError):
                await self.send(c.pdu(cmd | c.RESP, c.INVMSGLEN, seq))
                return True
            status, message_id = await self.smsc.submit(self, sm)
            await self.send(c.pdu(cmd | c.RESP, status, seq,
                                  c.cstr(message_id) if status == c.OK else b""))
            return True
        await self.send(c.pdu(c.GENERIC_NACK, c.INVCMDID, seq))
        return True


class Smsc:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.sessions: set[Session] = set()
        self.received: list[Received] = []
        self.by_part: dict[str, Received] = {}
        self.pending_parts: dict[tuple[str, str, int], dict[int, tuple[str, str]]] = {}
        self.pending_receipts: list[tuple[str, c.Sm]] = []
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # (system id, destination, user_message_reference, short message) or
        # ("http", phone, reference) -> the id the first copy got
        self.accepted: dict[tuple[str, str, object, bytes], str] = {}
        self.repeats: dict[str, int] = {}  # part id -> repeated submissions of it
        self.stats: dict[str, int] = dict.fromkeys(
            ("submit_sm", "http_submit", "duplicates", "deliver_sm", "deliver_sm_refused",
             "redelivered", "enquire_link"), 0)

    # -- lifecycle ------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 2775) -> int:
        self.server = await asyncio.start_server(self._accept, host, port)
        bound: int = self.server.sockets[0].getsockname()[1]
        log.info("SMPP listening on %s:%d", host, bound)
        return bound

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for session in list(self.sessions):
            session.writer.close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        await session.run()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- behaviour ------------------------------------------------------------------
    def decide(self, to: str, interface: str) -> str | None:
        """None to accept, else the refusal: throttled | queue_full | temporary | permanent."""
        b = self.behaviour
        if b.reject_pattern and re.search(b.reject_pattern, to):
            return "permanent"
        if b.throttle_next > 0:
            b.throttle_next -= 1
            return "throttled"
        if interface == "smpp" and b.queue_full_next > 0:
            b.queue_full_next -= 1
            return "queue_full"
        if b.fail_next > 0:
            b.fail_next -= 1
            return "temporary"
        return None

    # -- SMPP submissions -------------------------------------------------------------
    async def submit(self, session: Session, sm: c.Sm) -> tuple[int, str]:
        self.stats["submit_sm"] += 1
        if self.behaviour.slow_smpp_s:
            await asyncio.sleep(self.behaviour.slow_smpp_s)
        to = sm.dest if sm.dest.startswith("+") else f"+{sm.dest}"
        reference = sm.tlvs.get(c.TLV_USER_MESSAGE_REFERENCE)
        seen = (session.system_id or "", to, reference, sm.message)
        if reference is not None and seen in self.accepted:
            return c.OK, self._repeat(seen, to)
        refusal = self.decide(to, "smpp")
        codes = {"permanent": c.INVDSTADR, "throttled": c.THROTTLED,
                 "queue_full": c.MSGQFUL, "temporary": c.SYSERR}
        if refusal:
            log.info("submit_sm to %s refused: %s", to, refusal)
            return codes[refusal], ""
        message_id = uuid.uuid4().hex[:16]
        if reference is not None:
            self.accepted[seen] = message_id
        concat, payload = c.split_udh(sm)
        text = c.decode_text(payload, sm.data_coding)
        encoding = "UCS-2" if sm.data_coding == 0x08 else "GSM-7"
        if concat is None:
            self._record(Received(message_id, to, sm.source, text, encoding, 1, "smpp",
                                  [message_id]), submits=1)
        else:
            ref, total, seq = concat
            key = (session.system_id or "", to, ref)
            parts = self.pending_parts.setdefault(key, {})
            parts[seq] = (message_id, text)
            if len(parts) == total:
                del self.pending_parts[key]
                ordered = [parts[i] for i in sorted(parts)]
                self._record(Received(ordered[0][0], to, sm.source,
                                      "".join(t for _, t in ordered), encoding, total, "smpp",
                                      [i for i, _ in ordered]), submits=total)
        if sm.registered_delivery & 0x03:
            self._spawn(self._receipt_later(session, message_id, to, sm.source, text,
                                            self.behaviour.receipt_status,
                                            self.behaviour.receipt_delay_s))
        return c.OK, message_id

    def _repeat(self, key: tuple[str, str, object, bytes], to: str) -> str:
        """A copy of a submission already accepted: counted, answered with its id."""
        message_id = self.accepted[key]
        self.stats["duplicates"] += 1
        self.repeats[message_id] = self.repeats.get(message_id, 0) + 1
        record = self.by_part.get(message_id)
        if record is not None:
            record.submits += 1
        log.info("repeated submission to %s: answered with %s, not sent again", to,
                 message_id)
        return message_id

    def _record(self, message: Received, submits: int) -> None:
        message.submits = submits + sum(self.repeats.get(p, 0) for p in message.part_ids)
        self.received.append(message)
        for pid in message.part_ids:
            self.by_part[pid] = message
        log.info("received %s for %s (%s, %d part(s)): %s", message.interface, message.to,
                 message.encoding, message.parts, message.text)

    async def _receipt_later(self, session: Session, message_id: str, to: str, sender: str,
                             text: str, stat: str, delay: float) -> None:
        await asyncio.sleep(delay)
        record = self.by_part.get(message_id)
        if record is not None:
            record.status = stat
        stamp = dt.datetime.now(dt.UTC).strftime("%y%m%d%H%M")
        delivered = "001" if stat == "DELIVRD" else "000"
        err = "000" if stat == "DELIVRD" else "001"
        body = (f"id:{message_id} sub:001 dlvrd:{delivered} submit date:{stamp} "
                f"done date:{stamp} stat:{stat} err:{err} text:{text[:20]}")
        sm = c.Sm(to.removeprefix("+"), sender, 0x04, 0x00, c.gsm_encode(body), tlvs={
            0x001E: message_id.encode() + b"\x00",
            0x0427: struct.pack(">B", RECEIPT_STATES.get(stat, 7))})
        await self._deliver(session.system_id, sm, 1, session)

    async def _deliver(self, system_id: str | None, sm: c.Sm, tries: int,
                       session: Session | None = None) -> None:
        target = session if session is not None and session.bound else (
            self._session_for(system_id))
        if target is None:
            self.pending_receipts.append((system_id or "", sm))
            return
        with contextlib.suppress(ConnectionError):
            await target.deliver(sm, tries)

    def redeliver(self, system_id: str | None, sm: c.Sm, tries: int) -> None:
        """Deliver ``sm`` again, ``redeliver_delay_s`` from now."""
        async def later() -> None:
            await asyncio.sleep(self.behaviour.redeliver_delay_s)
            self.stats["redelivered"] += 1
            await self._deliver(system_id, sm, tries)

        self._spawn(later())

    def _session_for(self, system_id: str | None) -> Session | None:
        for s in self.sessions:
            if s.bound and (system_id is None or s.system_id == system_id):
                return s
        return None

    async def flush_pending(self, session: Session) -> None:
        keep = []
        for system_id, sm in self.pending_receipts:
            if system_id == session.system_id:
                await session.deliver(sm)
            else:
                keep.append((system_id, sm))
        self.pending_receipts = keep

    # -- replies (mobile-originated) --------------------------------------------------
    async def inject_mo(self, sender: str, text: str, to: str = "Noria") -> int:
        """Send a reply from ``sender`` to every bound session; return how many got it."""
        ucs2 = any(ch not in c.GSM_BASIC and ch not in c.GSM_EXT_CODE for ch in text)
        payload = text.encode("utf-16-be") if ucs2 else c.gsm_encode(text)
        sm = c.Sm(sender.removeprefix("+"), to, 0x00, 0x08 if ucs2 else 0x00, payload)
        sent = 0
        for session in list(self.sessions):
            if session.bound:
                with contextlib.suppress(ConnectionError):
                    await session.deliver(sm)
                    sent += 1
        return sent

    # -- the HTTP aggregator ------------------------------------------------------------
    async def http_submit(self, to: str, text: str, sender: str = "Noria",
                          reference: str | None = None) -> tuple[str | None, str]:
        self.stats["http_submit"] += 1
        if self.behaviour.slow_http_s:
            await asyncio.sleep(self.behaviour.slow_http_s)
        key = ("http", to, reference, b"")
        if reference is not None and key in self.accepted:
            return None, self._repeat(key, to)
        refusal = self.decide(to, "http")
        if refusal:
            return refusal, ""
        gsm = all(ch in c.GSM_BASIC or ch in c.GSM_EXT_CODE for ch in text)
        encoding = "GSM-7" if gsm else "UCS-2"
        length = c.septets(text) if gsm else len(text.encode("utf-16-be")) // 2
        single, per = (160, 153) if gsm else (70, 67)
        parts = 1 if length <= single else -(-length // per)
        message_id = uuid.uuid4().hex[:16]
        if reference is not None:
            self.accepted[key] = message_id
        self._record(Received(message_id, to, sender, text, encoding, parts, "http",
                              [message_id]), submits=1)
        self._spawn(self._http_receipt(message_id, self.behaviour.receipt_status,
                                       self.behaviour.receipt_delay_s))
        return None, message_id

    async def _http_receipt(self, message_id: str, stat: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if message_id in self.by_part:
            self.by_part[message_id].status = stat

    def messages(self, to: str | None = None, interface: str | None = None
                 ) -> list[dict[str, Any]]:
        return [asdict(m) for m in self.received
                if (to is None or m.to == to) and (interface is None or m.interface == interface)]
