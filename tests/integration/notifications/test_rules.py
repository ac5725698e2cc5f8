"""One SMS per event, quiet hours, consent, STOP replies, poison events."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from services.notifications.domain.messages import CASABLANCA
from shared.contracts.clients import ClientBlocked, ClientKycVerified, ClientPhoneChanged
from shared.envelope import Envelope, envelope_for
from tests.integration.notifications.conftest import Rig
from tests.integration.notifications.events import disbursed, due

pytestmark = pytest.mark.integration


async def test_a_redelivered_event_sends_one_sms(rig: Rig) -> None:
    client_id, phone = await rig.register()
    event = disbursed(client_id, phone)
    env = envelope_for(event, aggregate_id=event.loan_id)
    for _ in range(3):
        await rig.publish_envelope(env, event.topic, event.loan_id)
    await rig.wait_message({"delivered"}, client_id=client_id)
    await rig.consumed_all()  # the copies were consumed too
    await rig.after_a_sending_round()  # and anything they had queued was sent

    assert len(await rig.messages(client_id=client_id)) == 1
    assert len(await rig.on_phone(phone)) == 1


async def test_the_database_refuses_a_second_message_for_the_same_event(rig: Rig) -> None:
    client_id, phone = await rig.register()
    event = disbursed(client_id, phone)
    env = await rig.publish(event, key=event.loan_id)
    await rig.wait_message({"delivered"}, client_id=client_id)
    async with rig.pool.acquire() as conn:  # as a replay with a cleared inbox would try
        inserted = await conn.fetchval(
            "INSERT INTO messages (id, source_event_id, template, template_version, language,"
            " text, encoding, segments, status, not_before, next_attempt_at)"
            " VALUES ($1, $2, 'loan_disbursed', 1, 'fr', 'x', 'GSM-7', 1, 'queued', now(),"
            " now()) ON CONFLICT (source_event_id, template) DO NOTHING RETURNING 1",
            uuid.uuid4(), env.event_id)
    assert inserted is None


async def test_a_reminder_at_night_waits_for_eight_o_clock_casablanca(rig: Rig) -> None:
    client_id, phone = await rig.register()
    rig.clock.set_local(23, 30)
    await rig.publish(due(client_id), key=client_id)
    msg = await rig.wait_message({"queued"}, client_id=client_id)
    release = dt.datetime.fromisoformat(msg["not_before"]).astimezone(CASABLANCA)
    assert (release.hour, release.minute) == (8, 0)
    assert release.date() == dt.datetime.now(CASABLANCA).date() + dt.timedelta(days=1)

    # An urgent confirmation is not held back by quiet hours.
    await rig.publish(disbursed(client_id, phone), key=client_id)
    # queued after the reminder and delivered: the sender claimed since, and left it
    await rig.until(lambda: _template_status(rig, client_id, "loan_disbursed", "delivered"),
                    "the urgent SMS")
    assert await _template_status(rig, client_id, "repayment_due", "queued")
    assert [m["text"][:16] for m in await rig.on_phone(phone)] == ["Noria: votre pre"]

    rig.clock.set_local(8, 1, days=1)  # the morning comes
    await rig.until(lambda: _template_status(rig, client_id, "repayment_due", "delivered"),
                    "the deferred reminder")
    texts = [m["text"] for m in await rig.on_phone(phone)]
    assert len(texts) == 2 and "rappel" in texts[1] and "468,20 MAD" in texts[1]


async def test_no_consent_means_no_sms(rig: Rig) -> None:
    client_id, phone = await rig.register(consent=False)
    await rig.publish(disbursed(client_id, phone), key=client_id)
    msg = await rig.wait_message({"suppressed"}, client_id=client_id)
    assert msg["reason"] == "no_consent"
    await rig.after_a_sending_round()
    assert await rig.on_phone(phone) == []


async def test_a_blocked_client_gets_no_sms(rig: Rig) -> None:
    client_id, phone = await rig.register()
    await rig.publish(ClientBlocked(client_id=client_id, reason="fraud", blocked_by="op"),
                      key=client_id)
    await rig.publish(ClientKycVerified(client_id=client_id, verified_by="op"), key=client_id)
    msg = await rig.wait_message({"suppressed"}, client_id=client_id)
    assert msg["reason"] == "client_blocked"
    assert await rig.on_phone(phone) == []


async def test_an_unknown_client_gets_no_sms_while_unknown(rig: Rig) -> None:
    client_id = f"cl-unknown-{uuid.uuid4().hex[:8]}"
    env = await rig.publish(ClientKycVerified(client_id=client_id, verified_by="op"),
                            key=client_id)

    async def held() -> bool:  # until its ClientRegistered comes (see test_held.py)
        async with rig.pool.acquire() as conn:
            return bool(await conn.fetchval(
                "SELECT 1 FROM held_triggers WHERE source_event_id = $1 AND client_id = $2",
                env.event_id, client_id))

    await rig.until(held, "the trigger held")
    assert await rig.messages(client_id=client_id) == []


async def test_a_new_phone_number_is_used(rig: Rig) -> None:
    client_id, old_phone = await rig.register()
    new_phone = old_phone[:-1] + ("0" if old_phone[-1] != "0" else "1")
    await rig.publish(ClientPhoneChanged(client_id=client_id, phone=new_phone), key=client_id)
    await rig.publish(ClientKycVerified(client_id=client_id, verified_by="op"), key=client_id)
    msg = await rig.wait_message({"delivered"}, client_id=client_id)
    assert msg["phone"] == new_phone
    assert len(await rig.on_phone(new_phone)) == 1 and await rig.on_phone(old_phone) == []


async def test_a_stop_reply_opts_the_client_out(rig: Rig) -> None:
    client_id, phone = await rig.register()
    await rig.until(lambda: _bound(rig), "the service bound to the SMSC")
    resp = await rig.sim.post("/mo", json={"sender": phone, "text": "STOP"})
    assert resp.status_code == 200, resp.text

    async def opted_out() -> bool:
        async with rig.pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT NOT consent FROM recipients WHERE client_id = $1", client_id) is True

    await rig.until(opted_out, "the opt-out")
    await rig.publish(disbursed(client_id, phone), key=client_id)
    msg = await rig.wait_message({"suppressed"}, client_id=client_id)
    assert msg["reason"] == "no_consent"
    assert await rig.on_phone(phone) == []
    assert "SmsOptedOut" in await rig.outbox_types(client_id)
    stats = (await rig.api.get("/v1/sms/stats", headers=rig.operator)).json()
    assert stats["opt_outs"]["sms_stop"] >= 1


async def test_a_malformed_event_goes_to_the_dead_letters_not_to_a_phone(rig: Rig) -> None:
    client_id, phone = await rig.register()
    good = disbursed(client_id, phone)
    payload = good.model_dump(mode="json")
    payload["principal"] = 5000  # a JSON number for money: the contract refuses it
    env = Envelope(type="LoanDisbursed", aggregate_id=good.loan_id, payload=payload)
    await rig.producer.send_and_wait(rig.topic("loans.events"), env.to_bytes(),
                                     key=good.loan_id.encode(),
                                     headers=[("type", b"LoanDisbursed")])
    await rig.producer.send_and_wait(rig.topic("loans.events"), b"{not json",
                                     key=good.loan_id.encode())

    async def dead_lettered() -> bool:
        resp = await rig.api.get("/v1/dead-letters", headers=rig.operator)
        keys = [d["key"] for d in resp.json() if d["consumer"] == rig.group]
        return keys.count(good.loan_id) == 2

    await rig.until(dead_lettered, "both records dead-lettered")
    letters = [d for d in (await rig.api.get("/v1/dead-letters", headers=rig.operator)).json()
               if d["key"] == good.loan_id]
    assert {d["reason"] for d in letters} == {"invalid_payload", "malformed"}
    assert any("principal" in d["error"] for d in letters)
    assert await rig.messages(loan_id=good.loan_id) == []
    assert await rig.on_phone(phone) == []


async def _template_status(rig: Rig, client_id: str, template: str, status: str) -> bool:
    return any(m["template"] == template and m["status"] == status
               for m in await rig.messages(client_id=client_id))


async def _bound(rig: Rig) -> bool:
    sessions = (await rig.sim.get("/sessions")).json()
    return any(s["bound"] for s in sessions)


async def test_a_deferred_reminder_is_not_sent_after_a_stop_in_the_night(rig: Rig) -> None:
    client_id, phone = await rig.register()
    rig.clock.set_local(22, 0)
    await rig.publish(due(client_id), key=client_id)
    await rig.wait_message({"queued"}, client_id=client_id)
    await rig.until(lambda: _bound(rig), "the service bound to the SMSC")
    assert (await rig.sim.post("/mo", json={"sender": phone, "text": "stop"})).status_code == 200

    async def opted_out() -> bool:
        async with rig.pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT NOT consent FROM recipients WHERE client_id = $1", client_id) is True

    await rig.until(opted_out, "the opt-out")
    rig.clock.set_local(8, 1, days=1)
    msg = await rig.wait_message({"suppressed"}, client_id=client_id)
    assert msg["reason"] == "no_consent"
    assert await rig.on_phone(phone) == []
