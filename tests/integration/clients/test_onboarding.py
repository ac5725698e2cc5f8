"""Onboarding, reading, KYC with maker-checker, block/unblock and contact changes."""

from __future__ import annotations

import pytest

from tests.integration.clients.conftest import Service, client_body, new_partner, token
from tests.integration.clients.facts import consumed, emitted

pytestmark = pytest.mark.integration


async def test_a_partner_onboards_a_client_with_normalised_identity(svc: Service) -> None:
    partner = new_partner()
    cin = "ab" + client_body()["national_id"][2:]
    nsn = client_body()["phone"][1:]
    resp = await svc.http.post("/v1/clients", headers=token("partner", "agent-1", partner),
                               json=client_body(national_id=f" {cin} ", phone=f"+212 {nsn}",
                                                language="AR"))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["kyc_status"] == "pending"
    assert body["national_id"] == cin.upper()
    assert body["phone"] == f"+212{nsn}"
    assert body["language"] == "ar"
    assert body["partner_id"] == partner
    assert body["onboarded_by"] == "agent-1"

    got = await svc.http.get(f"/v1/clients/{body['id']}", headers=token("partner",
                                                                          partner=partner))
    assert got.status_code == 200 and got.json()["id"] == body["id"]

    [env] = await svc.events.of(body["id"], "ClientRegistered")
    assert env.payload["phone"] == f"+212{nsn}"
    assert env.payload["language"] == "ar"
    assert env.payload["sms_consent"] is True
    assert env.payload["partner_id"] == partner

    credit = await svc.credit(body["id"])
    assert (credit["credit_limit"], credit["exposure"], credit["available"]) == (
        "5000.00", "0.00", "5000.00")


async def test_an_operator_onboards_for_a_named_partner(svc: Service) -> None:
    partner = new_partner()
    missing = await svc.http.post("/v1/clients", json=client_body(), headers=token("operator"))
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "partner_id"
    ok = await svc.http.post("/v1/clients", json=client_body(partner_id=partner),
                             headers=token("operator"))
    assert ok.status_code == 201 and ok.json()["partner_id"] == partner


BAD_INPUTS = [
    ({"phone": "0512345678"}, "phone"),
    ({"phone": "+33612345678"}, "phone"),
    ({"national_id": "1234567"}, "national_id"),
    ({"national_id": "ABC12"}, "national_id"),
    ({"date_of_birth": "2015-06-01"}, "date_of_birth"),
    ({"language": "en"}, "language"),
    ({"full_name": " "}, "full_name"),
    ({"sms_consent": None}, "sms_consent"),
]


@pytest.mark.parametrize(("override", "field"), BAD_INPUTS)
async def test_bad_input_is_a_problem_naming_the_field_and_writes_nothing(
        svc: Service, override: dict[str, object], field: str) -> None:
    partner = new_partner()
    body = client_body(**override)
    if override.get("sms_consent", True) is None:
        del body["sms_consent"]
    resp = await svc.http.post("/v1/clients", json=body, headers=token("partner",
                                                                       partner=partner))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in resp.json()["errors"]] == [field]
    rows = await svc.rows("SELECT id FROM clients WHERE partner_id = $1", partner)
    assert rows == []


async def test_duplicates_are_409_pointing_to_the_client_only_for_who_may_see_it(
        svc: Service) -> None:
    partner, other = new_partner(), new_partner()
    first = await svc.register(token("partner", partner=partner))
    same_cin = client_body(national_id=first["national_id"].lower())
    same_phone = client_body(phone="0" + first["phone"][4:])

    for body, field in ((same_cin, "national_id"), (same_phone, "phone")):
        mine = await svc.http.post("/v1/clients", json=body,
                                   headers=token("partner", partner=partner))
        assert mine.status_code == 409, mine.text
        assert mine.headers["content-type"] == "application/problem+json"
        assert mine.json()["errors"][0]["field"] == field
        assert mine.json()["existing_client_id"] == first["id"]

        theirs = await svc.http.post("/v1/clients", json=body,
                                     headers=token("partner", partner=other))
        assert theirs.status_code == 409
        assert "existing_client_id" not in theirs.json()
        assert first["id"] not in theirs.text
    assert await svc.rows("SELECT id FROM clients WHERE partner_id = $1", other) == []
    assert len(await svc.rows("SELECT id FROM clients WHERE national_id = $1",
                              first["national_id"])) == 1


async def test_idempotent_onboarding_returns_the_first_client(svc: Service) -> None:
    headers = {**token("partner", partner=new_partner()), "Idempotency-Key": "k-" + new_partner()}
    body = client_body()
    first = await svc.http.post("/v1/clients", json=body, headers=headers)
    again = await svc.http.post("/v1/clients", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = await svc.http.post("/v1/clients", json=client_body(), headers=headers)
    assert other.status_code == 422


async def test_kyc_maker_checker(svc: Service) -> None:
    partner = new_partner()
    client = await svc.register(token("operator", "ops-maker"), partner_id=partner)
    cid = client["id"]
    same = await svc.http.post(f"/v1/clients/{cid}/kyc", json={"decision": "verified"},
                               headers=token("operator", "ops-maker"))
    assert same.status_code == 403
    assert same.headers["content-type"] == "application/problem+json"
    assert (await svc.http.get(f"/v1/clients/{cid}", headers=token("operator"))
            ).json()["kyc_status"] == "pending"

    partner_try = await svc.http.post(f"/v1/clients/{cid}/kyc", json={"decision": "verified"},
                                      headers=token("partner", partner=partner))
    assert partner_try.status_code == 403  # partners lack clients:kyc

    ok = await svc.http.post(f"/v1/clients/{cid}/kyc", json={"decision": "verified"},
                             headers=token("operator", "ops-checker"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["kyc_status"] == "verified"
    assert ok.json()["kyc_decided_by"] == "ops-checker"
    [env] = await svc.events.of(cid, "ClientKycVerified")
    assert env.payload["verified_by"] == "ops-checker"
    assert env.payload["phone"] == client["phone"]
    assert env.payload["language"] == "fr"

    again = await svc.http.post(f"/v1/clients/{cid}/kyc",
                                json={"decision": "rejected", "reason": "late doubt"},
                                headers=token("operator", "ops-checker"))
    assert again.status_code == 409


async def test_kyc_rejection_needs_a_reason(svc: Service) -> None:
    client = await svc.register(token("partner", partner=new_partner()))
    cid = client["id"]
    unknown = await svc.http.post(f"/v1/clients/{cid}/kyc", json={"decision": "maybe"},
                                  headers=token("operator"))
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "decision"
    no_reason = await svc.http.post(f"/v1/clients/{cid}/kyc", json={"decision": "rejected"},
                                    headers=token("operator"))
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    assert svc.events.now(cid, "ClientKycRejected") == []
    ok = await svc.http.post(f"/v1/clients/{cid}/kyc",
                             json={"decision": "rejected", "reason": "CIN photo unreadable"},
                             headers=token("operator", "ops-2"))
    assert ok.status_code == 200 and ok.json()["kyc_status"] == "rejected"
    [env] = await svc.events.of(cid, "ClientKycRejected")
    assert env.payload["reason"] == "CIN photo unreadable"
    assert env.payload["phone"] == client["phone"]


async def test_block_and_unblock(svc: Service) -> None:
    partner = new_partner()
    client = await svc.register(token("partner", partner=partner))
    cid = client["id"]
    no_reason = await svc.http.post(f"/v1/clients/{cid}/block", json={"reason": ""},
                                    headers=token("operator"))
    assert no_reason.status_code == 422
    blocked = await svc.http.post(f"/v1/clients/{cid}/block", json={"reason": "fraud review"},
                                  headers=token("operator", "ops-1"))
    assert blocked.status_code == 200 and blocked.json()["blocked"] is True
    [env] = await svc.events.of(cid, "ClientBlocked")
    assert env.payload["reason"] == "fraud review" and env.payload["blocked_by"] == "ops-1"
    assert env.payload["phone"] == client["phone"]

    by_partner = await svc.http.post(f"/v1/clients/{cid}/unblock", json={"reason": "ok"},
                                     headers=token("partner", partner=partner))
    assert by_partner.status_code == 403  # an operator's block binds the partner
    unblocked = await svc.http.post(f"/v1/clients/{cid}/unblock",
                                    json={"reason": "review cleared"},
                                    headers=token("operator"))
    assert unblocked.status_code == 200 and unblocked.json()["blocked"] is False
    await svc.events.of(cid, "ClientUnblocked")
    twice = await svc.http.post(f"/v1/clients/{cid}/unblock", json={"reason": "x"},
                                headers=token("operator"))
    assert twice.status_code == 409


async def test_patch_phone_language_consent_emits_one_event_each(svc: Service) -> None:
    partner = new_partner()
    headers = token("partner", partner=partner)
    client = await svc.register(headers)
    cid = client["id"]
    new_phone = client_body()["phone"]
    resp = await svc.http.patch(f"/v1/clients/{cid}", headers=headers,
                                json={"phone": new_phone, "language": "ar",
                                      "sms_consent": False})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    expected_phone = "+212" + new_phone[1:]
    assert (body["phone"], body["language"], body["sms_consent"]) == (expected_phone, "ar",
                                                                      False)
    [phone] = await svc.events.of(cid, "ClientPhoneChanged")
    assert phone.payload["phone"] == expected_phone
    assert phone.payload["previous_phone"] == client["phone"]
    [lang] = await svc.events.of(cid, "ClientLanguageChanged")
    assert lang.payload["language"] == "ar"
    [consent] = await svc.events.of(cid, "ClientConsentChanged")
    assert consent.payload["sms_consent"] is False
    assert consent.payload["phone"] == expected_phone

    # Bad input names the field and changes nothing.
    for bad, field in (({"phone": "12345"}, "phone"), ({"language": "es"}, "language"),
                       ({}, "body")):
        r = await svc.http.patch(f"/v1/clients/{cid}", headers=headers, json=bad)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field
    other = await svc.register(headers)
    taken = await svc.http.patch(f"/v1/clients/{cid}", headers=headers,
                                 json={"phone": other["phone"], "language": "fr"})
    assert taken.status_code == 409
    now = (await svc.http.get(f"/v1/clients/{cid}", headers=headers)).json()
    assert (now["phone"], now["language"]) == (expected_phone, "ar")


async def test_tokens_and_scopes_are_enforced(svc: Service) -> None:
    no_token = await svc.http.get("/v1/clients")
    assert no_token.status_code == 401
    wallet = await svc.http.get("/v1/clients", headers=token("wallet", partner="w"))
    assert wallet.status_code == 403


async def test_a_stop_reply_withdraws_the_clients_sms_consent_once(svc: Service) -> None:
    from shared.contracts.notifications import SmsOptedOut

    headers = token("partner", partner=new_partner())
    client = await svc.register(headers, sms_consent=True)
    cid = client["id"]
    stop = SmsOptedOut(phone=client["phone"], client_id=cid, source="sms_stop")
    await svc.send(stop, key=cid)
    await svc.send(stop, key=cid)  # a second STOP changes nothing more
    [consent] = await svc.events.of(cid, "ClientConsentChanged")
    assert consent.payload == {**consent.payload, "sms_consent": False, "source": "sms_stop"}
    now = (await svc.http.get(f"/v1/clients/{cid}", headers=headers)).json()
    assert now["sms_consent"] is False
    await consumed(svc)  # the second STOP was read
    assert await emitted(svc, cid, "ClientConsentChanged") == 1
    assert len(svc.events.now(cid, "ClientConsentChanged")) == 1
