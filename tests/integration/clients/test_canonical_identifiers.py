"""A CIN or phone written in another script, case or spacing is the same client.

Arabic-Indic, extended Arabic-Indic and full-width digits, lower case and spaces all
reach the one canonical value before the uniqueness check (409 pointing to the
client), lookups find the client by any spelling, and what cannot be made canonical
is refused with 422 naming the field, writing nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.clients.conftest import Service, client_body, new_partner, token

pytestmark = pytest.mark.integration

ARABIC_INDIC, EXTENDED_ARABIC_INDIC, FULL_WIDTH = 0x0660, 0x06F0, 0xFF10


def script(text: str, zero: int) -> str:
    """``text`` with every ASCII digit written in the script whose zero is ``zero``."""
    return "".join(chr(zero + int(ch)) if ch.isdigit() else ch for ch in text)


def full_width(text: str) -> str:
    """Every printable ASCII character as its full-width form (U+FF01-FF5E)."""
    return "".join(chr(ord(ch) - 0x21 + 0xFF01) if "!" <= ch <= "~" else ch for ch in text)


async def _onboard(svc: Service, partner: str) -> dict[str, Any]:
    return await svc.register(token("partner", partner=partner))


def _cin_spellings(cin: str) -> list[str]:
    letters, digits = cin[:2], cin[2:]
    return [
        letters + script(digits, ARABIC_INDIC),
        letters.lower() + script(digits, EXTENDED_ARABIC_INDIC),
        full_width(cin),
        f" {letters.lower()} {digits[:3]} {digits[3:]} ",
        f"{letters}-{script(digits[:3], ARABIC_INDIC)}{script(digits[3:], FULL_WIDTH)}",
    ]


async def test_the_same_cin_in_any_script_or_spacing_is_409_pointing_to_the_client(
        svc: Service) -> None:
    partner = new_partner()
    first = await _onboard(svc, partner)
    for spelled in _cin_spellings(first["national_id"]):
        resp = await svc.http.post("/v1/clients", json=client_body(national_id=spelled),
                                   headers=token("partner", partner=partner))
        assert resp.status_code == 409, (spelled, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["errors"][0]["field"] == "national_id"
        assert resp.json()["existing_client_id"] == first["id"]
    rows = await svc.rows("SELECT id, national_id FROM clients WHERE partner_id = $1", partner)
    assert [(r["id"], r["national_id"]) for r in rows] == [(first["id"], first["national_id"])]


async def test_the_same_phone_in_arabic_indic_digits_is_the_same_client(svc: Service) -> None:
    partner = new_partner()
    first = await _onboard(svc, partner)
    national = "0" + first["phone"][4:]  # +2126XXXXXXXX -> 06XXXXXXXX
    for spelled in (script(national, ARABIC_INDIC), script(national, EXTENDED_ARABIC_INDIC),
                    script(first["phone"], ARABIC_INDIC), full_width(first["phone"])):
        resp = await svc.http.post("/v1/clients", json=client_body(phone=spelled),
                                   headers=token("partner", partner=partner))
        assert resp.status_code == 409, (spelled, resp.text)
        assert resp.json()["errors"][0]["field"] == "phone"
        assert resp.json()["existing_client_id"] == first["id"]

    found = await svc.http.get("/v1/clients", params={"phone": script(national, ARABIC_INDIC)},
                               headers=token("partner", partner=partner))
    assert found.status_code == 200, found.text
    assert [c["id"] for c in found.json()["items"]] == [first["id"]]
    by_cin = await svc.http.get(
        "/v1/clients", params={"national_id": _cin_spellings(first["national_id"])[0]},
        headers=token("partner", partner=partner))
    assert [c["id"] for c in by_cin.json()["items"]] == [first["id"]]


async def test_a_client_written_in_arabic_indic_digits_is_stored_canonical(
        svc: Service) -> None:
    partner = new_partner()
    ascii_body = client_body()
    cin, phone = ascii_body["national_id"], ascii_body["phone"]
    created = await svc.register(token("partner", partner=partner), national_id=script(
        cin.lower(), ARABIC_INDIC), phone=script(phone, EXTENDED_ARABIC_INDIC))
    assert created["national_id"] == cin
    assert created["phone"] == "+212" + phone[1:]
    [env] = await svc.events.of(created["id"], "ClientRegistered")
    assert env.payload["phone"] == "+212" + phone[1:]

    again = await svc.http.post("/v1/clients", json=client_body(national_id=cin),
                                headers=token("partner", partner=partner))
    assert again.status_code == 409 and again.json()["existing_client_id"] == created["id"]


async def test_a_phone_change_to_another_clients_number_in_other_digits_is_409(
        svc: Service) -> None:
    partner = new_partner()
    first, second = await _onboard(svc, partner), await _onboard(svc, partner)
    resp = await svc.http.patch(
        f"/v1/clients/{second['id']}", json={"phone": script(first["phone"], ARABIC_INDIC)},
        headers=token("partner", partner=partner))
    assert resp.status_code == 409, resp.text
    assert resp.json()["errors"][0]["field"] == "phone"
    assert resp.json()["existing_client_id"] == first["id"]


EMOJI, CYRILLIC_IE, ARABIC_BEH, ARABIC_YEH = "\U0001F600", "\u0415", "\u0628", "\u064A"
ABSURD = [
    ("national_id", "BE12" + EMOJI + "34"),
    ("national_id", EMOJI),
    ("national_id", "B" + CYRILLIC_IE + "123456"),      # a Cyrillic letter among Latin ones
    ("national_id", ARABIC_BEH + ARABIC_YEH + script("123456", ARABIC_INDIC)),
    ("national_id", "BE" + "1" * 30),
    ("national_id", "BE" + script("1", ARABIC_INDIC) * 40),   # over the request's bound
    ("phone", script("0612345678", ARABIC_INDIC) + EMOJI),
    ("phone", "06" + script("1234567", ARABIC_INDIC) + ARABIC_BEH),
    ("phone", script("0", ARABIC_INDIC) * 33),
    ("phone", "+" + script("33612345678", ARABIC_INDIC)),     # a French number
]


@pytest.mark.parametrize(("field", "value"), ABSURD)
async def test_an_absurd_identifier_is_422_naming_the_field_and_writes_nothing(
        svc: Service, field: str, value: str) -> None:
    partner = new_partner()
    resp = await svc.http.post("/v1/clients", json=client_body(**{field: value}),
                               headers=token("partner", partner=partner))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in resp.json()["errors"]] == [field]
    assert await svc.rows("SELECT id FROM clients WHERE partner_id = $1", partner) == []


@pytest.mark.parametrize(("field", "value"), [ABSURD[0], ABSURD[7]])
async def test_an_absurd_identifier_in_a_search_is_422_naming_the_field(
        svc: Service, field: str, value: str) -> None:
    resp = await svc.http.get("/v1/clients", params={field: value},
                              headers=token("partner", partner=new_partner()))
    assert resp.status_code == 422, resp.text
    assert [e["field"] for e in resp.json()["errors"]] == [field]
