"""Templates, previews, operator sends, opt-outs, partner scoping, stats; clear errors."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.notifications.conftest import Rig
from tests.integration.notifications.events import disbursed

pytestmark = pytest.mark.integration

TEMPLATES = {"loan_disbursed", "repayment_received", "repayment_due", "arrears_notice",
             "disbursement_failed", "kyc_verified", "kyc_rejected", "loan_closed",
             "refund_issued", "deposit_received", "withdrawal_paid", "interest_posted",
             "account_dormant", "account_dormant_no_balance", "installment_due_soon",
             "installment_due_today", "installment_overdue", "loan_settled_early",
             "schedule_rebuilt", "late_charges_waived", "arrears_cured", "refund_failed",
             "savings_refund_issued", "savings_refund_failed", "withdrawal_released",
             "withdrawal_in_doubt", "group_summary", "group_summary_all_paid"}
DISBURSED_VARS = {"amount": "5000.00", "wallet": "+212612345678", "first_due_amount": "468.20",
                  "first_due_date": "2027-04-12", "teg": "0.345678", "cost": "1618.40"}
PROBLEM = "application/problem+json"


async def test_every_template_exists_in_french_and_arabic(rig: Rig) -> None:
    resp = await rig.api.get("/v1/templates", headers=rig.operator)
    assert resp.status_code == 200
    pairs = {(t["name"], t["language"]) for t in resp.json()}
    assert {(n, lang) for n in TEMPLATES for lang in ("fr", "ar")} <= pairs


@pytest.mark.parametrize("name", sorted(TEMPLATES))
async def test_every_french_template_fits_one_gsm7_part(rig: Rig, name: str) -> None:
    template = next(t for t in (await rig.api.get(
        "/v1/templates", params={"name": name}, headers=rig.operator)).json()
        if t["language"] == "fr")
    samples = {"money": "12345.67", "date": "2027-04-12", "phone_tail": "+212612345678",
               "int": "12", "text": "x", "percent": "0.234512"}
    variables = {k: samples[v] for k, v in template["variables"].items()}
    for language in ("fr", "ar"):
        resp = await rig.api.post(f"/v1/templates/{name}/preview", headers=rig.operator,
                                  json={"language": language, "variables": variables})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        if language == "fr":
            assert (body["encoding"], body["segments"]) == ("GSM-7", 1), body["text"]
        else:
            assert body["encoding"] == "UCS-2" and body["segments"] <= 2, body["text"]


async def test_preview_in_both_languages(rig: Rig) -> None:
    fr = await rig.api.post("/v1/templates/loan_disbursed/preview", headers=rig.operator,
                            json={"language": "fr", "variables": DISBURSED_VARS})
    assert fr.status_code == 200, fr.text
    assert "5 000,00 MAD" in fr.json()["text"] and "12/04/2027" in fr.json()["text"]
    assert fr.json()["transliterated"] is True  # prêt → pret keeps it GSM-7
    ar = await rig.api.post("/v1/templates/loan_disbursed/preview", headers=rig.operator,
                            json={"language": "ar", "variables": DISBURSED_VARS})
    assert ar.status_code == 200
    assert "5\u00a0000,00 درهم" in ar.json()["text"] and ar.json()["encoding"] == "UCS-2"


async def test_an_operator_adds_a_template_version(rig: Rig) -> None:
    name = f"promo_{uuid.uuid4().hex[:6]}"
    body = {"language": "fr", "body": "Noria: votre crédit de {amount} est prêt.",
            "variables": {"amount": "money"}, "policy": "keep"}
    first = await rig.api.post(f"/v1/templates/{name}/versions", json=body,
                               headers=rig.operator)
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1
    second = await rig.api.post(f"/v1/templates/{name}/versions", headers=rig.operator,
                                json={**body, "policy": "transliterate"})
    assert second.json()["version"] == 2
    preview = await rig.api.post(f"/v1/templates/{name}/preview", headers=rig.operator,
                                 json={"language": "fr", "variables": {"amount": "100"}})
    assert preview.json()["version"] == 2
    assert preview.json()["text"] == "Noria: votre crédit de 100,00 MAD est pret."
    versions = await rig.api.get("/v1/templates", headers=rig.operator,
                                 params={"name": name, "all_versions": "true"})
    assert [t["version"] for t in versions.json()] == [1, 2]
    partner = rig.token("partner", partner=rig.partner_id)
    denied = await rig.api.post(f"/v1/templates/{name}/versions", json=body, headers=partner)
    assert denied.status_code == 403


async def test_unknown_template_is_a_clear_404(rig: Rig) -> None:
    resp = await rig.api.post("/v1/templates/no_such_thing/preview", headers=rig.operator,
                              json={"language": "fr", "variables": {}})
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert resp.json()["errors"] == [{"field": "name",
                                      "message": "no template named no_such_thing"}]


async def test_a_missing_variable_is_a_clear_422(rig: Rig) -> None:
    resp = await rig.api.post("/v1/templates/loan_disbursed/preview", headers=rig.operator,
                              json={"language": "ar", "variables": {"amount": "5000.00"}})
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert resp.json()["errors"][0]["field"] == "variables.wallet"
    assert resp.json()["missing"] == ["wallet", "first_due_amount", "first_due_date", "teg",
                                      "cost"]


async def test_money_as_a_json_number_is_refused(rig: Rig) -> None:
    resp = await rig.api.post("/v1/templates/loan_disbursed/preview", headers=rig.operator,
                              json={"language": "fr",
                                    "variables": {**DISBURSED_VARS, "amount": 5000}})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "variables.amount"


async def test_a_bad_template_version_writes_nothing(rig: Rig) -> None:
    name = f"bad_{uuid.uuid4().hex[:6]}"
    resp = await rig.api.post(f"/v1/templates/{name}/versions", headers=rig.operator,
                              json={"language": "fr", "body": "x {amount}", "variables": {}})
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "body"
    listed = await rig.api.get("/v1/templates", params={"name": name}, headers=rig.operator)
    assert listed.status_code == 404


async def test_an_operator_send_to_an_invalid_phone_is_a_clear_422(rig: Rig) -> None:
    for phone in ("06123", "+212 9123456789", "+212 6123456789x"):
        resp = await rig.api.post("/v1/messages", headers=rig.operator, json={
            "template": "kyc_verified", "phone": phone, "language": "fr"})
        assert resp.status_code == 422, phone
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert resp.json()["errors"][0]["field"] == "phone"


async def test_a_phone_in_another_spelling_is_the_same_phone(rig: Rig) -> None:
    """Arabic-Indic digits, the national form or spaces: one client, one opt-out."""
    client_id, phone = await rig.register()
    national = "0" + phone.removeprefix("+212")
    arabic = "".join("٠١٢٣٤٥٦٧٨٩"[int(d)] for d in national)
    own = rig.token("partner", partner=rig.partner_id)
    resp = await rig.api.post("/v1/opt-outs", json={"phone": arabic}, headers=own)
    assert resp.status_code == 201, resp.text
    assert resp.json() == {"phone": phone, "client_ids": [client_id]}
    sent = await rig.api.post("/v1/messages", headers=rig.operator, json={
        "template": "kyc_verified", "phone": " ".join(national), "language": "fr"})
    assert sent.status_code == 201, sent.text
    assert sent.json()["phone"] == phone


async def test_an_operator_sends_a_template_to_a_client(rig: Rig) -> None:
    client_id, phone = await rig.register(language="ar")
    resp = await rig.api.post("/v1/messages", headers=rig.operator, json={
        "template": "kyc_verified", "client_id": client_id})
    assert resp.status_code == 201, resp.text
    assert resp.json()["language"] == "ar" and resp.json()["encoding"] == "UCS-2"
    await rig.wait_message({"delivered"}, client_id=client_id)
    assert len(await rig.on_phone(phone)) == 1
    unknown = await rig.api.post("/v1/messages", headers=rig.operator, json={
        "template": "kyc_verified", "client_id": "cl-nobody"})
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "client_id"


async def test_opt_out_through_the_api(rig: Rig) -> None:
    client_id, phone = await rig.register()
    other_partner = rig.token("partner", partner="pa-other")
    hidden = await rig.api.post("/v1/opt-outs", json={"phone": phone}, headers=other_partner)
    assert hidden.status_code == 404
    own = rig.token("partner", partner=rig.partner_id)
    resp = await rig.api.post("/v1/opt-outs", json={"phone": phone}, headers=own)
    assert resp.status_code == 201 and resp.json()["client_ids"] == [client_id]
    await rig.publish(disbursed(client_id, phone), key=client_id)
    msg = await rig.wait_message({"suppressed"}, client_id=client_id)
    assert msg["reason"] == "no_consent"


async def test_partners_see_only_their_clients_messages(rig: Rig) -> None:
    client_id, phone = await rig.register()
    await rig.publish(disbursed(client_id, phone), key=client_id)
    msg = await rig.wait_message({"delivered"}, client_id=client_id)

    own = rig.token("partner", partner=rig.partner_id)
    other = rig.token("partner", partner="pa-other")
    listed = await rig.api.get("/v1/messages", params={"client_id": client_id}, headers=own)
    assert [m["id"] for m in listed.json()] == [msg["id"]]
    assert (await rig.api.get(f"/v1/messages/{msg['id']}", headers=own)).status_code == 200
    assert (await rig.api.get("/v1/messages", params={"client_id": client_id},
                              headers=other)).json() == []
    assert (await rig.api.get(f"/v1/messages/{msg['id']}", headers=other)).status_code == 404
    assert (await rig.api.get("/v1/messages")).status_code == 401


async def test_stats_count_sent_delivered_and_segments_per_provider_and_language(
        rig: Rig) -> None:
    partner_id = f"pa-{uuid.uuid4().hex[:8]}"
    fr_client, fr_phone = await rig.register(partner_id=partner_id)
    ar_client, ar_phone = await rig.register(language="ar", partner_id=partner_id)
    await rig.publish(disbursed(fr_client, fr_phone), key=fr_client)
    await rig.publish(disbursed(ar_client, ar_phone), key=ar_client)
    await rig.wait_message({"delivered"}, client_id=fr_client)
    ar_msg = await rig.wait_message({"delivered"}, client_id=ar_client)

    stats = (await rig.api.get("/v1/sms/stats",
                               headers=rig.token("partner", partner=partner_id))).json()
    rows = {(r["provider"], r["language"]): r for r in stats["by_provider_language"]}
    assert rows[("smsc", "fr")]["sent"] == 1 and rows[("smsc", "fr")]["delivered"] == 1
    assert rows[("smsc", "fr")]["encodings"] == {"GSM-7": 1}
    assert rows[("smsc", "ar")]["segments"] == ar_msg["segments"]
    assert rows[("smsc", "ar")]["encodings"] == {"UCS-2": 1}
