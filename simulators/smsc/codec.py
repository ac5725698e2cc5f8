"""The simulator's own SMPP 3.4 and GSM 03.38 decoding (independent of any client's)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER = 0x01, 0x02, 0x09
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x04, 0x05, 0x06, 0x15
GENERIC_NACK, RESP = 0x80000000, 0x80000000
OK, INVMSGLEN, INVCMDID, INVBNDSTS, SYSERR = 0x00, 0x01, 0x03, 0x04, 0x08
INVDSTADR, MSGQFUL, THROTTLED = 0x0B, 0x14, 0x58
RX_T_APPN, RX_P_APPN, RX_R_APPN = 0x64, 0x65, 0x66
TLV_USER_MESSAGE_REFERENCE = 0x0204
HEADER = struct.Struct(">IIII")
MESSAGE_PAYLOAD = 0x0424

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~",
           0x3E: "]", 0x40: "|", 0x65: "€"}
GSM_EXT_CODE = {v: k for k, v in GSM_EXT.items()}


def gsm_decode(data: bytes) -> str:
    out, esc = [], False
    for b in data:
        if esc:
            out.append(GSM_EXT.get(b & 0x7F, "?"))
            esc = False
        elif b == 0x1B:
            esc = True
        else:
            out.append(GSM_BASIC[b & 0x7F])
    return "".join(out)


def gsm_encode(text: str) -> bytes:
    out = bytearray()
    for ch in text:
        if ch in GSM_EXT_CODE:
            out += bytes((0x1B, GSM_EXT_CODE[ch]))
        else:
            idx = GSM_BASIC.find(ch)
            out.append(idx if idx >= 0 and idx != 0x1B else 0x3F)
    return bytes(out)


def septets(text: str) -> int:
    return sum(2 if ch in GSM_EXT_CODE else 1 for ch in text)


def cstr(value: str) -> bytes:
    return value.encode("latin-1", errors="replace") + b"\x00"


def pdu(command_id: int, status: int, seq: int, body: bytes = b"") -> bytes:
    return HEADER.pack(16 + len(body), command_id, status, seq) + body


@dataclass
class Sm:
    source: str
    dest: str
    esm_class: int
    data_coding: int
    message: bytes
    registered_delivery: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)


def parse_sm(body: bytes) -> Sm:
    pos = 0

    def cs() -> str:
        nonlocal pos
        end = body.index(b"\x00", pos)
        value = body[pos:end].decode("latin-1")
        pos = end + 1
        return value

    def u8() -> int:
        nonlocal pos
        pos += 1
        return body[pos - 1]

    cs()
    u8(), u8()
    source = cs()
    u8(), u8()
    dest = cs()
    esm = u8()
    u8(), u8()
    cs(), cs()
    registered = u8()
    u8()
    coding = u8()
    u8()
    length = u8()
    message = body[pos:pos + length]
    if len(message) != length:
        raise ValueError("short_message shorter than sm_length")
    pos += length
    tlvs: dict[int, bytes] = {}
    while pos + 4 <= len(body):
        tag, n = struct.unpack_from(">HH", body, pos)
        tlvs[tag] = body[pos + 4:pos + 4 + n]
        pos += 4 + n
    if not message and MESSAGE_PAYLOAD in tlvs:
        # SMPP 3.4 §5.3.2.32: a text over 254 octets comes in message_payload, sm_length 0.
        message = tlvs.pop(MESSAGE_PAYLOAD)
    return Sm(source, dest, esm, coding, message, registered, tlvs)


def build_sm(sm: Sm) -> bytes:
    body = (cstr("") + bytes((1, 1)) + cstr(sm.source) + bytes((5, 0)) + cstr(sm.dest)
            + bytes((sm.esm_class, 0, 0)) + cstr("") + cstr("")
            + bytes((0, 0, sm.data_coding, 0, len(sm.message))) + sm.message)
    for tag, value in sm.tlvs.items():
        body += struct.pack(">HH", tag, len(value)) + value
    return body


def split_udh(sm: Sm) -> tuple[tuple[int, int, int] | None, bytes]:
    """((ref, total, seq) or None, payload) of a short message."""
    if not sm.esm_class & 0x40 or not sm.message:
        return None, sm.message
    n = sm.message[0]
    udh, payload = sm.message[1:1 + n], sm.message[1 + n:]
    i = 0
    while i + 2 <= len(udh):
        iei, ln = udh[i], udh[i + 1]
        data = udh[i + 2:i + 2 + ln]
        if iei == 0x00 and ln == 3:
            return (data[0], data[1], data[2]), payload
        if iei == 0x08 and ln == 4:
            return ((data[0] << 8) | data[1], data[2], data[3]), payload
        i += 2 + ln
    return None, payload


def decode_text(payload: bytes, data_coding: int) -> str:
    if data_coding == 0x08:
        return payload.decode("utf-16-be", errors="replace")
    if data_coding == 0x03:
        return payload.decode("latin-1")
    return gsm_decode(payload)
