"""The SMPP 3.4 wire format of the client."""

from __future__ import annotations

import pytest

from services.notifications.providers import smpp_pdu as p


def test_header_round_trip() -> None:
    raw = p.Pdu(p.ENQUIRE_LINK, 0, 42).encode()
    assert raw == bytes.fromhex("00000010" "00000015" "00000000" "0000002a")
    assert p.decode_header(raw) == (16, p.ENQUIRE_LINK, 0, 42)


def test_bind_transceiver_body() -> None:
    body = p.bind_body("noria", "secret", "noria")
    assert body == b"noria\x00secret\x00noria\x00\x34\x00\x00\x00"
    assert p.parse_bind(body) == ("noria", "secret")


def test_submit_sm_round_trip_with_udh() -> None:
    payload = p.concat_udh(7, 2, 1) + b"hello"
    sm = p.ShortMessage("Noria", "212612345678", payload, esm_class=p.ESM_UDHI,
                        data_coding=p.DC_UCS2, registered_delivery=1)
    back = p.ShortMessage.decode(sm.encode())
    assert back.destination_addr == "212612345678" and back.source_ton == 5
    assert back.registered_delivery == 1 and back.data_coding == p.DC_UCS2
    udh, text = back.user_data
    assert text == b"hello"
    assert p.parse_concat_udh(udh) == (7, 2, 1)


def test_tlvs_are_read() -> None:
    sm = p.ShortMessage("212612345678", "Noria", b"id:1 stat:DELIVRD", esm_class=p.ESM_RECEIPT,
                        tlvs={p.TLV_RECEIPTED_MESSAGE_ID: b"1\x00"})
    assert p.ShortMessage.decode(sm.encode()).tlvs == {p.TLV_RECEIPTED_MESSAGE_ID: b"1\x00"}


def test_limits() -> None:
    with pytest.raises(p.PduError):
        p.ShortMessage("Noria", "2126", b"x" * 255).encode()
    with pytest.raises(p.PduError):
        p.decode_header(bytes.fromhex("00000008" "00000015" "00000000" "00000001"))
    with pytest.raises(p.PduError):
        p.cstr("x" * 16, 16)


def test_error_classes() -> None:
    assert p.ESME_RTHROTTLED in p.THROTTLING_STATUSES and p.ESME_RMSGQFUL in p.THROTTLING_STATUSES
    assert p.ESME_RINVDSTADR in p.PERMANENT_STATUSES
    assert p.ESME_RSYSERR not in p.PERMANENT_STATUSES
    assert p.status_name(0x58) == "ESME_RTHROTTLED"
