"""SMPP 3.4 PDUs: services/notifications/providers/smpp_pdu.py against aiosmpplib's codec.

aiosmpplib ships only an ESME, so its PDU classes are the independent encoder and
decoder: every PDU Noria writes is decoded by aiosmpplib, and every PDU aiosmpplib
writes is decoded by Noria (bind, submit_sm, deliver_sm, enquire_link, unbind and
their responses).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiosmpplib import (
    NPI,
    TON,
    BindTransceiver,
    BindTransceiverResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    OptionalParam,
    PhoneNumber,
    SmppCommandStatus,
    SmppMessage,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
)
from aiosmpplib.protocol import MESSAGE_TYPE_MAP
from aiosmpplib.state import (
    RECEIPTED_MESSAGE_ID,
    SAR_MSG_REF_NUM,
    SAR_SEGMENT_SEQNUM,
    SAR_TOTAL_SEGMENTS,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifications.domain import encoding as enc
from services.notifications.domain.messages import parse_receipt
from services.notifications.providers import smpp_pdu as p


def theirs(raw: bytes) -> Any:
    """aiosmpplib's reading of a whole PDU."""
    header = SmppMessage.parse_header(raw)
    assert header.pdu_length == len(raw)
    return MESSAGE_TYPE_MAP[header.smpp_command].from_pdu(raw, header, "gsm0338")


def ours(raw: bytes) -> p.Pdu:
    length, command_id, status, seq = p.decode_header(raw[:16])
    assert length == len(raw)
    return p.Pdu(command_id, status, seq, raw[16:])


def params(msg: SubmitSm) -> dict[int, Any]:
    return {o.tag: o.value for o in msg.optional_params or []}


# ---------------------------------------------------------------- bind


def test_our_bind_transceiver_read_by_aiosmpplib() -> None:
    msg = theirs(p.Pdu(p.BIND_TRANSCEIVER, 0, 1, p.bind_body("noria", "s3cret", "noria")).encode())
    assert isinstance(msg, BindTransceiver) and msg.sequence_num == 1
    assert (msg.system_id, msg.password, msg.system_type) == ("noria", "s3cret", "noria")
    assert msg.interface_version == 0x34
    assert (msg.addr_ton, msg.addr_npi, msg.address_range) == (TON.UNKNOWN, NPI.UNKNOWN, "")


def test_aiosmpplib_bind_transceiver_read_by_us() -> None:
    raw = BindTransceiver(sequence_num=9, system_id="esme", password="pw",
                          system_type="vms").pdu()
    pdu = ours(raw)
    assert (pdu.command_id, pdu.sequence) == (p.BIND_TRANSCEIVER, 9)
    assert p.parse_bind(pdu.body) == ("esme", "pw")


@pytest.mark.parametrize("version", [None, 0x34])
def test_aiosmpplib_bind_transceiver_resp_read_by_us(version: int | None) -> None:
    raw = BindTransceiverResp(sequence_num=1, system_id="SMSC",
                              sc_interface_version=version).pdu()
    pdu = ours(raw)
    assert (pdu.command_id, pdu.status) == (p.BIND_TRANSCEIVER | p.RESP, p.ESME_ROK)
    assert p.parse_message_id(pdu.body) == "SMSC"


# ---------------------------------------------------------------- submit_sm


def our_submit(text: str, encoding: enc.Encoding, udh: bytes = b"") -> bytes:
    sm = p.ShortMessage("Noria", "212612345678", udh + enc.to_wire(text, encoding),
                        esm_class=p.ESM_UDHI if udh else 0,
                        data_coding=p.DC_DEFAULT if encoding == "GSM-7" else p.DC_UCS2,
                        registered_delivery=1)
    return p.Pdu(p.SUBMIT_SM, 0, 5, sm.encode()).encode()


@pytest.mark.parametrize("text,encoding", [
    ("Votre échéance de 1500 MAD est due le 05/03. Réf [A-12] {x} ~ ^ | \\ €", "GSM-7"),
    ("مرحبا، قسطك 1500 درهم", "UCS-2"),
    ("Prêt accordé ✓ 😀", "UCS-2"),
])
def test_our_submit_sm_read_by_aiosmpplib(text: str, encoding: enc.Encoding) -> None:
    msg = theirs(our_submit(text, encoding))
    assert isinstance(msg, SubmitSm) and not isinstance(msg, DeliverSm)
    assert msg.short_message == text
    assert msg.source == PhoneNumber("Noria", TON.ALPHANUMERIC, NPI.UNKNOWN)
    assert msg.destination == PhoneNumber("212612345678", TON.INTERNATIONAL, NPI.ISDN)
    assert msg.registered_delivery == 1 and msg.esm_class == 0
    assert msg.encoding == (None if encoding == "GSM-7" else "ucs2")


def test_our_concatenated_parts_read_by_aiosmpplib() -> None:
    message = enc.encode("Rappel: " + "échéance [n.] " * 20)
    total = message.segments
    assert message.encoding == "GSM-7" and total == 3
    texts = []
    for seq, part in enumerate(message.parts, start=1):
        msg = theirs(our_submit(part, message.encoding, p.concat_udh(200, total, seq)))
        assert msg.esm_class & 0x40
        assert params(msg) == {SAR_MSG_REF_NUM: 200, SAR_SEGMENT_SEQNUM: seq,
                               SAR_TOTAL_SEGMENTS: total}
        texts.append(msg.short_message)
    assert "".join(texts) == message.text


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=120))
def test_any_text_we_submit_is_read_back_by_aiosmpplib(text: str) -> None:
    message = enc.encode(text, "keep")
    for part in message.parts:
        assert theirs(our_submit(part, message.encoding)).short_message == part


@pytest.mark.parametrize("encoding", [None, "ucs2"])
def test_aiosmpplib_submit_sm_read_by_us(encoding: str | None) -> None:
    text = "Payez 1500 MAD {ref} €" if encoding is None else "Payez 1500 MAD — شكرا"
    msg = SubmitSm(sequence_num=3, short_message=text, encoding=encoding,
                   source=PhoneNumber("Noria", TON.ALPHANUMERIC),
                   destination=PhoneNumber("212612345678", TON.INTERNATIONAL, NPI.ISDN))
    pdu = ours(msg.pdu())
    assert (pdu.command_id, pdu.sequence) == (p.SUBMIT_SM, 3)
    sm = p.ShortMessage.decode(pdu.body)
    assert (sm.source_addr, sm.source_ton, sm.destination_addr, sm.dest_ton, sm.dest_npi) == (
        "Noria", 5, "212612345678", 1, 1)
    assert sm.registered_delivery == 1
    _, payload = sm.user_data
    assert enc.from_wire(payload, sm.data_coding) == text


@pytest.mark.parametrize("message_id", ["", "a1b2c3d4", "x" * 64])
def test_submit_sm_resp_both_ways(message_id: str) -> None:
    pdu = ours(SubmitSmResp(sequence_num=4, message_id=message_id).pdu())
    assert (pdu.command_id, pdu.sequence, pdu.status) == (p.SUBMIT_SM | p.RESP, 4, 0)
    assert p.parse_message_id(pdu.body) == message_id
    back = theirs(p.Pdu(p.SUBMIT_SM | p.RESP, 0, 4, p.message_id_body(message_id)).encode())
    assert isinstance(back, SubmitSmResp) and back.message_id == message_id


@pytest.mark.parametrize("status", [p.ESME_RTHROTTLED, p.ESME_RMSGQFUL, p.ESME_RINVDSTADR,
                                    p.ESME_RSYSERR])
def test_refusal_statuses_mean_the_same(status: int) -> None:
    raw = SubmitSmResp(sequence_num=2, command_status=SmppCommandStatus(status)).pdu()
    assert ours(raw).status == status
    assert p.status_name(status) == SmppCommandStatus(status).name


# ---------------------------------------------------------------- deliver_sm


def test_aiosmpplib_receipt_read_by_us() -> None:
    text = DeliverSm.encode_receipt({"id": "ref-42", "sub": 1, "dlvrd": 1, "stat": "DELIVRD",
                                     "err": 0, "text": "Votre echeance"})
    msg = DeliverSm(sequence_num=11, short_message=text, esm_class=0x04,
                    source=PhoneNumber("212612345678", TON.INTERNATIONAL, NPI.ISDN),
                    destination=PhoneNumber("Noria", TON.ALPHANUMERIC),
                    optional_params=[OptionalParam(RECEIPTED_MESSAGE_ID, "ref-42")])
    pdu = ours(msg.pdu())
    assert pdu.command_id == p.DELIVER_SM
    sm = p.ShortMessage.decode(pdu.body)
    assert sm.esm_class & p.ESM_RECEIPT
    assert sm.tlvs[p.TLV_RECEIPTED_MESSAGE_ID].rstrip(b"\x00") == b"ref-42"
    receipt = parse_receipt(enc.from_wire(sm.user_data[1], sm.data_coding))
    assert receipt is not None
    assert (receipt.provider_message_id, receipt.stat, receipt.status) == (
        "ref-42", "DELIVRD", "delivered")


def test_a_receipt_in_our_format_read_by_aiosmpplib() -> None:
    body = "id:ref-43 sub:001 dlvrd:000 submit date:2501011200 done date:2501011201 " \
           "stat:UNDELIV err:001 text:Rappel"
    sm = p.ShortMessage("212612345678", "Noria", enc.to_wire(body, "GSM-7"),
                        esm_class=p.ESM_RECEIPT, tlvs={p.TLV_RECEIPTED_MESSAGE_ID: b"ref-43\x00"})
    msg = theirs(p.Pdu(p.DELIVER_SM, 0, 12, sm.encode()).encode())
    assert isinstance(msg, DeliverSm) and msg.is_receipt()
    receipt = msg.parse_receipt()
    assert (receipt["id"], receipt["stat"], receipt["err"]) == ("ref-43", "UNDELIV", 1)
    assert params(msg)[RECEIPTED_MESSAGE_ID] == "ref-43"


@pytest.mark.parametrize("text", ["STOP", "Merci, j'ai payé 1500 MAD [reçu]", "توقف"])
def test_aiosmpplib_reply_read_by_us(text: str) -> None:
    msg = DeliverSm(sequence_num=13, short_message=text,
                    source=PhoneNumber("212612345678", TON.INTERNATIONAL, NPI.ISDN),
                    destination=PhoneNumber("Noria", TON.ALPHANUMERIC))
    sm = p.ShortMessage.decode(ours(msg.pdu()).body)
    assert not sm.esm_class & p.ESM_RECEIPT
    assert sm.source_addr == "212612345678"
    assert enc.from_wire(sm.user_data[1], sm.data_coding) == text


def test_a_long_reply_in_message_payload_read_by_us() -> None:
    # SMPP 3.4 §5.3.2.32: the text may come in the message_payload TLV with sm_length 0;
    # aiosmpplib's codec does so for any text over 254 octets.
    text = "Bonjour, je voudrais reporter mon echeance. " * 7
    msg = DeliverSm(sequence_num=14, short_message=text,
                    source=PhoneNumber("212612345678", TON.INTERNATIONAL, NPI.ISDN),
                    destination=PhoneNumber("Noria", TON.ALPHANUMERIC))
    sm = p.ShortMessage.decode(ours(msg.pdu()).body)
    assert sm.short_message == b"" and p.TLV_MESSAGE_PAYLOAD in sm.tlvs
    assert enc.from_wire(sm.user_data[1], sm.data_coding) == text


def test_our_deliver_sm_resp_read_by_aiosmpplib() -> None:
    msg = theirs(p.Pdu(p.DELIVER_SM | p.RESP, p.ESME_ROK, 15, p.message_id_body("")).encode())
    assert isinstance(msg, DeliverSmResp) and msg.sequence_num == 15 and msg.message_id == ""
    assert DeliverSmResp(sequence_num=15).pdu() == p.Pdu(
        p.DELIVER_SM | p.RESP, 0, 15, p.message_id_body("")).encode()


# ---------------------------------------------------------------- header-only PDUs


@pytest.mark.parametrize("ref,command_id,status", [
    (EnquireLink(sequence_num=21), p.ENQUIRE_LINK, 0),
    (EnquireLinkResp(sequence_num=21), p.ENQUIRE_LINK | p.RESP, 0),
    (Unbind(sequence_num=22), p.UNBIND, 0),
    (UnbindResp(sequence_num=22), p.UNBIND | p.RESP, 0),
    (GenericNack(sequence_num=23, command_status=SmppCommandStatus.ESME_RINVCMDID),
     p.GENERIC_NACK, p.ESME_RINVCMDID),
], ids=["enquire_link", "enquire_link_resp", "unbind", "unbind_resp", "generic_nack"])
def test_header_only_pdus_are_byte_identical(ref: SmppMessage, command_id: int,
                                             status: int) -> None:
    raw = p.Pdu(command_id, status, ref.sequence_num).encode()
    assert raw == ref.pdu()
    back = theirs(raw)
    assert type(back) is type(ref) and back.sequence_num == ref.sequence_num
    assert back.command_status == status
