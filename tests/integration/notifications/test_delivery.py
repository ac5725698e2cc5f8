"""Messages travel over real SMPP to the simulator: delivered, throttled, refused, failover."""

from __future__ import annotations

import pytest

from tests.identity import scraper
from tests.integration.notifications.conftest import SMPP_TIMEOUT_S, Rig
from tests.integration.notifications.events import disbursed, repayment

pytestmark = pytest.mark.integration


async def test_a_loan_disbursed_sms_is_delivered_in_french_over_smpp(rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    event = disbursed(client_id, phone)
    await rig.publish(event, key=event.loan_id)

    msg = await rig.wait_message({"delivered"}, client_id=client_id)
    assert msg["text"] == ("Noria: votre pret de 5 000,00 MAD a été versé sur votre "
                           f"portefeuille ****{phone[-4:]}. 1re échéance: 468,20 MAD le "
                           "12/04/2027.")
    assert (msg["phone"], msg["language"], msg["template"]) == (phone, "fr", "loan_disbursed")
    assert (msg["encoding"], msg["segments"], msg["provider"], msg["attempts"]) == \
        ("GSM-7", 1, "smsc", 1)
    assert (await rig.messages(loan_id=event.loan_id))[0]["id"] == msg["id"]

    received = await rig.on_phone(phone)
    assert len(received) == 1
    assert received[0]["text"] == msg["text"]  # the GSM-7 octets decode to the same text
    assert (received[0]["interface"], received[0]["encoding"]) == ("smpp", "GSM-7")
    assert await rig.outbox_types(msg["id"]) == ["SmsSubmitted", "SmsDelivered"]
    metrics = (await rig.api.get("/metrics", headers=scraper())).text
    assert 'noria_sms_submitted_total{encoding="GSM-7",language="fr",provider="smsc"}' in metrics


async def test_a_long_arabic_receipt_goes_as_concatenated_ucs2_parts(rig: Rig) -> None:
    client_id, phone = await rig.register(language="ar")
    await rig.publish(repayment(client_id), key=client_id)

    msg = await rig.wait_message({"delivered"}, client_id=client_id)
    assert msg["encoding"] == "UCS-2" and msg["segments"] == 2
    assert "500,00 درهم" in msg["text"] and "4\u00a0650,00 درهم" in msg["text"]
    assert "12/05/2027" in msg["text"]
    received = await rig.on_phone(phone)
    assert len(received) == 1
    assert received[0]["parts"] == 2  # two submit_sm with one UDH reference, reassembled
    assert received[0]["text"] == msg["text"]


async def test_a_throttled_message_is_retried_later_and_delivered(rig: Rig) -> None:
    client_id, phone = await rig.register()
    await rig.control(throttle_next=2)  # the SMSC and the aggregator both say "slow down"
    await rig.publish(disbursed(client_id, phone), key=client_id)

    msg = await rig.wait_message({"delivered"}, client_id=client_id)
    detail = await rig.message(msg["id"])
    outcomes = [(a["attempt"], a["provider"], a["outcome"]) for a in detail["attempt_log"]]
    assert outcomes == [(1, "smsc", "throttled"), (1, "aggregator", "throttled"),
                        (2, "smsc", "submitted")]
    assert detail["attempts"] == 2
    assert len(await rig.on_phone(phone)) == 1


async def test_a_permanent_refusal_fails_once_without_retry_or_failover(rig: Rig) -> None:
    client_id, phone = await rig.register()
    await rig.control(reject_pattern=phone.replace("+", r"\+"))
    await rig.publish(disbursed(client_id, phone), key=client_id)

    msg = await rig.wait_message({"failed"}, client_id=client_id)
    assert msg["permanent"] is True and "ESME_RINVDSTADR" in msg["reason"]
    detail = await rig.message(msg["id"])
    assert [(a["provider"], a["outcome"]) for a in detail["attempt_log"]] == [
        ("smsc", "permanent")]
    assert await rig.on_phone(phone) == []
    assert await rig.outbox_types(msg["id"]) == ["SmsFailed"]


async def test_an_smsc_error_fails_over_to_the_aggregator(rig: Rig) -> None:
    client_id, phone = await rig.register()
    await rig.control(fail_next=1)  # ESME_RSYSERR from the SMSC
    await rig.publish(disbursed(client_id, phone), key=client_id)

    msg = await rig.wait_message({"delivered"}, client_id=client_id)
    assert msg["provider"] == "aggregator" and msg["attempts"] == 1
    detail = await rig.message(msg["id"])
    assert [(a["provider"], a["outcome"]) for a in detail["attempt_log"]] == [
        ("smsc", "temporary"), ("aggregator", "submitted")]
    received = await rig.on_phone(phone)
    assert [r["interface"] for r in received] == ["http"]


async def test_a_slow_smsc_fails_over_to_the_aggregator(rig: Rig) -> None:
    client_id, phone = await rig.register()
    await rig.control(slow_smpp_s=SMPP_TIMEOUT_S * 3)
    await rig.publish(disbursed(client_id, phone), key=client_id)

    msg = await rig.wait_message({"delivered"}, client_id=client_id)
    assert msg["provider"] == "aggregator"
    detail = await rig.message(msg["id"])
    assert detail["attempt_log"][0]["provider"] == "smsc"
    assert "did not answer" in detail["attempt_log"][0]["detail"]


async def test_temporary_failures_stop_after_the_last_attempt(rig: Rig) -> None:
    client_id, phone = await rig.register()
    await rig.control(fail_next=1000)  # both routes keep failing
    await rig.publish(disbursed(client_id, phone), key=client_id)

    msg = await rig.wait_message({"failed"}, client_id=client_id)
    assert msg["permanent"] is False and msg["attempts"] == 4  # max_attempts in the rig
    detail = await rig.message(msg["id"])
    assert [a["attempt"] for a in detail["attempt_log"]] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert {a["outcome"] for a in detail["attempt_log"]} == {"temporary"}
    assert await rig.on_phone(phone) == []


@pytest.mark.parametrize(("stat", "status"), [("UNDELIV", "failed"), ("EXPIRED", "expired")])
async def test_receipts_that_are_not_delivered(rig: Rig, stat: str, status: str) -> None:
    client_id, phone = await rig.register()
    await rig.control(receipt_status=stat)
    await rig.publish(disbursed(client_id, phone), key=client_id)

    msg = await rig.wait_message({status}, client_id=client_id)
    assert msg["reason"] == f"receipt {stat}"
    assert await rig.outbox_types(msg["id"]) == ["SmsSubmitted", "SmsFailed"]


async def test_an_operator_resends_a_message(rig: Rig) -> None:
    client_id, phone = await rig.register()
    await rig.control(receipt_status="UNDELIV")
    await rig.publish(disbursed(client_id, phone), key=client_id)
    first = await rig.wait_message({"failed"}, client_id=client_id)
    await rig.control(receipt_status="DELIVRD")

    resp = await rig.api.post(f"/v1/messages/{first['id']}/resend", headers=rig.operator)
    assert resp.status_code == 201, resp.text
    again = resp.json()
    assert again["resend_of"] == first["id"] and again["text"] == first["text"]
    await rig.until(lambda: _status_is(rig, again["id"], "delivered"), "resend delivered")
    assert len(await rig.on_phone(phone)) == 2

    partner = rig.token("partner", partner="pa-someone-else")
    assert (await rig.api.post(f"/v1/messages/{first['id']}/resend",
                               headers=partner)).status_code == 403


async def _status_is(rig: Rig, message_id: str, status: str) -> bool:
    return (await rig.message(message_id))["status"] == status
