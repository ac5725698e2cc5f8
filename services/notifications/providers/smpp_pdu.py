"""The small part of the SMPP 3.4 wire format Noria needs (pure; no I/O).

A PDU is a 16-octet header (command_length, command_id, command_status,
sequence_number, big-endian) and a body of C-octet strings, integers and
optional TLVs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

GENERIC_NACK = 0x80000000
BIND_TRANSCEIVER = 0x00000009
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
ENQUIRE_LINK = 0x00000015
RESP = 0x80000000

ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RSYSERR = 0x08
ESME_RINVSRCADR = 0x0A
ESME_RINVDSTADR = 0x0B
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RMSGQFUL = 0x14
ESME_RINVESMCLASS = 0x43
ESME_RSUBMITFAIL = 0x45
ESME_RINVSRCTON = 0x48
ESME_RINVDSTTON = 0x50
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64
ESME_RX_P_APPN = 0x65
ESME_RX_R_APPN = 0x66

STATUS_NAMES = {
    ESME_ROK: "ESME_ROK", ESME_RINVMSGLEN: "ESME_RINVMSGLEN", ESME_RINVCMDID: "ESME_RINVCMDID",
    ESME_RINVBNDSTS: "ESME_RINVBNDSTS", ESME_RSYSERR: "ESME_RSYSERR",
    ESME_RINVSRCADR: "ESME_RINVSRCADR", ESME_RINVDSTADR: "ESME_RINVDSTADR",
    ESME_RBINDFAIL: "ESME_RBINDFAIL", ESME_RINVPASWD: "ESME_RINVPASWD",
    ESME_RMSGQFUL: "ESME_RMSGQFUL", ESME_RINVESMCLASS: "ESME_RINVESMCLASS",
    ESME_RSUBMITFAIL: "ESME_RSUBMITFAIL", ESME_RINVSRCTON: "ESME_RINVSRCTON",
    ESME_RINVDSTTON: "ESME_RINVDSTTON", ESME_RTHROTTLED: "ESME_RTHROTTLED",
    ESME_RX_T_APPN: "ESME_RX_T_APPN", ESME_RX_P_APPN: "ESME_RX_P_APPN",
    ESME_RX_R_APPN: "ESME_RX_R_APPN",
}
# Refusals that another try (or another route) will not change.
PERMANENT_STATUSES = frozenset({
    ESME_RINVMSGLEN, ESME_RINVSRCADR, ESME_RINVDSTADR, ESME_RINVESMCLASS, ESME_RINVSRCTON,
    ESME_RINVDSTTON, ESME_RX_P_APPN, ESME_RX_R_APPN,
})
THROTTLING_STATUSES = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})

ESM_UDHI = 0x40
ESM_RECEIPT = 0x04
DC_DEFAULT = 0x00
DC_UCS2 = 0x08
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_MESSAGE_PAYLOAD = 0x0424  # the text instead of short_message (sm_length 0)
TLV_USER_MESSAGE_REFERENCE = 0x0204  # Integer(2): the ESME's own reference of a message
HEADER = struct.Struct(">IIII")
MAX_PDU = 64 * 1024


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"0x{status:08X}")


@dataclass(frozen=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes = b""

    def encode(self) -> bytes:
        return HEADER.pack(HEADER.size + len(self.body), self.command_id, self.status,
                           self.sequence) + self.body


class PduError(Exception):
    pass


def decode_header(header: bytes) -> tuple[int, int, int, int]:
    length, command_id, status, sequence = HEADER.unpack(header)
    if length < HEADER.size or length > MAX_PDU:
        raise PduError(f"bad command_length {length}")
    return length, command_id, status, sequence


def cstr(value: str, max_len: int = 255) -> bytes:
    raw = value.encode("ascii")
    if len(raw) >= max_len:
        raise PduError(f"{value!r} is longer than {max_len - 1} octets")
    return raw + b"\x00"


class BodyReader:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def cstring(self) -> str:
        end = self.body.find(b"\x00", self.pos)
        if end < 0:
            raise PduError("unterminated C-octet string")
        value = self.body[self.pos:end].decode("ascii", errors="replace")
        self.pos = end + 1
        return value

    def u8(self) -> int:
        if self.pos >= len(self.body):
            raise PduError("body too short")
        value = self.body[self.pos]
        self.pos += 1
        return value

    def octets(self, n: int) -> bytes:
        if self.pos + n > len(self.body):
            raise PduError("body too short")
        value = self.body[self.pos:self.pos + n]
        self.pos += n
        return value

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self.pos + 4 <= len(self.body):
            tag, length = struct.unpack_from(">HH", self.body, self.pos)
            self.pos += 4
            found[tag] = self.octets(length)
        return found


def bind_body(system_id: str, password: str, system_type: str = "") -> bytes:
    return (cstr(system_id, 16) + cstr(password, 9) + cstr(system_type, 13)
            + bytes((0x34, 0, 0)) + cstr("", 41))


def parse_bind(body: bytes) -> tuple[str, str]:
    reader = BodyReader(body)
    return reader.cstring(), reader.cstring()


@dataclass(frozen=True)
class ShortMessage:
    """The fields of submit_sm and deliver_sm that Noria uses."""

    source_addr: str
    destination_addr: str
    short_message: bytes
    esm_class: int = 0
    data_coding: int = DC_DEFAULT
    registered_delivery: int = 0
    source_ton: int = 5
    source_npi: int = 0
    dest_ton: int = 1
    dest_npi: int = 1
    tlvs: dict[int, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        if len(self.short_message) > 254:
            raise PduError("short_message is longer than 254 octets")
        body = (cstr("") + bytes((self.source_ton, self.source_npi)) + cstr(self.source_addr, 21)
                + bytes((self.dest_ton, self.dest_npi)) + cstr(self.destination_addr, 21)
                + bytes((self.esm_class, 0, 0)) + cstr("") + cstr("")
                + bytes((self.registered_delivery, 0, self.data_coding, 0,
                         len(self.short_message)))
                + self.short_message)
        for tag, value in self.tlvs.items():
            body += struct.pack(">HH", tag, len(value)) + value
        return body

    @classmethod
    def decode(cls, body: bytes) -> ShortMessage:
        r = BodyReader(body)
        r.cstring()  # service_type
        source_ton, source_npi = r.u8(), r.u8()
        source = r.cstring()
        dest_ton, dest_npi = r.u8(), r.u8()
        dest = r.cstring()
        esm_class = r.u8()
        r.u8()  # protocol_id
        r.u8()  # priority_flag
        r.cstring()  # schedule_delivery_time
        r.cstring()  # validity_period
        registered = r.u8()
        r.u8()  # replace_if_present_flag
        data_coding = r.u8()
        r.u8()  # sm_default_msg_id
        length = r.u8()
        message = r.octets(length)
        return cls(source, dest, message, esm_class, data_coding, registered, source_ton,
                   source_npi, dest_ton, dest_npi, r.tlvs())

    @property
    def user_data(self) -> tuple[bytes, bytes]:
        """(UDH, text octets); the UDH is empty without the UDHI flag.

        The octets are ``short_message``, or the ``message_payload`` TLV when
        ``short_message`` is empty (SMPP 3.4 §5.3.2.32: how an SMSC sends a text
        longer than 254 octets).
        """
        data = self.short_message or self.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
        if self.esm_class & ESM_UDHI and data:
            udh_len = data[0] + 1
            return data[:udh_len], data[udh_len:]
        return b"", data


def concat_udh(reference: int, total: int, seq: int) -> bytes:
    """The 6-octet concatenation header (IEI 0x00, 8-bit reference)."""
    return bytes((0x05, 0x00, 0x03, reference & 0xFF, total, seq))


def parse_concat_udh(udh: bytes) -> tuple[int, int, int] | None:
    """(reference, total, seq) from a UDH carrying IEI 0x00 or 0x08; None otherwise."""
    pos = 1
    while pos + 2 <= len(udh):
        iei, length = udh[pos], udh[pos + 1]
        data = udh[pos + 2:pos + 2 + length]
        if iei == 0x00 and length == 3:
            return data[0], data[1], data[2]
        if iei == 0x08 and length == 4:
            return (data[0] << 8) | data[1], data[2], data[3]
        pos += 2 + length
    return None


def message_id_body(message_id: str) -> bytes:
    return cstr(message_id, 65)


def parse_message_id(body: bytes) -> str:
    return BodyReader(body).cstring() if body else ""
