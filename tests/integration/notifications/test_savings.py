"""SMS about savings (savings.events): deposit received, withdrawal paid, interest posted,
account dormant — each once, in the client's language, with the balance."""

from __future__ import annotations

import datetime as dt

import pytest

from services.notifications.domain.messages import CASABLANCA
from shared.envelope import envelope_for
from tests.integration.notifications.conftest import Rig
from tests.integration.notifications.events import (
    account_id,
    account_opened,
    deposit,
    dormant,
    interest,
    withdrawal,
)

pytestmark = pytest.mark.integration

NBSP = "\u00a0"


async def _one_sms(rig: Rig, client_id: str, phone: str, template: str) -> str:
    """The text of the one message ``template`` made for the client, as the phone got it."""
    msg = await rig.wait_message({"delivered"}, client_id=client_id)
    assert msg["template"] == template
    await rig.consumed_all()
    await rig.after_a_sending_round()
    assert [m["template"] for m in await rig.messages(client_id=client_id)] == [template]
    on_phone = await rig.on_phone(phone)
    assert [m["text"] for m in on_phone] == [msg["text"]]
    text: str = msg["text"]
    return text


async def test_a_deposit_is_confirmed_in_french_with_the_new_balance(rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    await rig.publish(deposit(client_id, amount="1500.00", balance="12500.50"),
                      key=client_id)
    text = await _one_sms(rig, client_id, phone, "deposit_received")
    assert text == ("Noria: nous avons recu votre dépot de 1 500,00 MAD sur votre compte"
                    " d'épargne. Nouveau solde: 12 500,50 MAD.")


async def test_a_deposit_is_confirmed_in_arabic_with_the_new_balance(rig: Rig) -> None:
    client_id, phone = await rig.register(language="ar")
    await rig.publish(deposit(client_id, amount="1500.00", balance="12500.50"),
                      key=client_id)
    text = await _one_sms(rig, client_id, phone, "deposit_received")
    assert f"1{NBSP}500,00 درهم" in text and f"12{NBSP}500,50 درهم" in text
    assert (await rig.messages(client_id=client_id))[0]["encoding"] == "UCS-2"


async def test_a_paid_withdrawal_names_amount_fee_and_balance(rig: Rig) -> None:
    client_id, phone = await rig.register(language="ar")
    await rig.publish(withdrawal(client_id), key=client_id)
    text = await _one_sms(rig, client_id, phone, "withdrawal_paid")
    assert text == ("نوريا: تم تحويل سحبكم بمبلغ 200,00 درهم إلى محفظتكم. الرسوم: 5,00 درهم."
                    f" رصيد التوفير: 1{NBSP}295,00 درهم.")


async def test_posted_interest_names_the_net_amount_and_the_balance(rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    await rig.publish(interest(client_id), key=client_id)
    text = await _one_sms(rig, client_id, phone, "interest_posted")
    assert text == ("Noria: 12,34 MAD d'intérets (nets d'impot) versés sur votre épargne au"
                    " 31/03/2027. Nouveau solde: 3 012,34 MAD.")


async def test_a_dormant_account_is_told_its_last_known_balance(rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    account = account_id()
    await rig.publish(account_opened(client_id, account), key=account)
    await rig.publish(deposit(client_id, account, amount="300.00", balance="300.00"),
                      key=account)
    await rig.publish(withdrawal(client_id, account, balance="95.00"), key=account)
    await rig.publish(dormant(client_id, account), key=account)

    async def three_delivered() -> bool:
        msgs = await rig.messages(client_id=client_id)
        return len(msgs) == 3 and all(m["status"] == "delivered" for m in msgs)

    await rig.until(three_delivered, "deposit, withdrawal and dormancy SMS delivered")
    notice = next(m for m in await rig.messages(client_id=client_id)
                  if m["template"] == "account_dormant")
    assert notice["text"] == ("Noria: votre compte d'épargne est en sommeil faute"
                              " d'opération. Solde: 95,00 MAD. Un dépot le réactive.")
    assert len(await rig.on_phone(phone)) == 3


async def test_a_replayed_older_event_does_not_move_the_known_balance_back(rig: Rig) -> None:
    client_id, _ = await rig.register(language="fr")
    account = account_id()
    old = envelope_for(deposit(client_id, account, amount="100.00", balance="100.00"),
                       aggregate_id=account)
    new = deposit(client_id, account, amount="50.00", balance="150.00")
    await rig.publish(new, key=account)
    await rig.wait_message({"delivered"}, client_id=client_id)
    # A dead letter of an earlier deposit replayed now: its SMS, but not its balance.
    await rig.publish_envelope(old.model_copy(update={
        "occurred_at": old.occurred_at - dt.timedelta(hours=1)}), "savings.events", account)
    await rig.publish(dormant(client_id, account), key=account)

    async def notice() -> bool:
        return any(m["template"] == "account_dormant"
                   for m in await rig.messages(client_id=client_id))

    await rig.until(notice, "the dormancy notice")
    text = next(m["text"] for m in await rig.messages(client_id=client_id)
                if m["template"] == "account_dormant")
    assert "Solde: 150,00 MAD" in text


async def test_a_dormant_account_never_seen_gets_the_notice_without_a_figure(
        rig: Rig) -> None:
    client_id, phone = await rig.register(language="ar")
    await rig.publish(dormant(client_id), key=client_id)
    text = await _one_sms(rig, client_id, phone, "account_dormant_no_balance")
    assert "درهم" not in text and "خاملا" in text


async def test_a_redelivered_deposit_sends_one_sms(rig: Rig) -> None:
    client_id, phone = await rig.register()
    event = deposit(client_id)
    env = envelope_for(event, aggregate_id=event.account_id)
    for _ in range(3):
        await rig.publish_envelope(env, event.topic, event.account_id)
    await _one_sms(rig, client_id, phone, "deposit_received")


async def test_no_consent_means_no_savings_sms(rig: Rig) -> None:
    client_id, phone = await rig.register(consent=False)
    await rig.publish(deposit(client_id), key=client_id)
    await rig.publish(interest(client_id), key=client_id)

    async def both_suppressed() -> bool:
        msgs = await rig.messages(client_id=client_id)
        return len(msgs) == 2 and all(m["status"] == "suppressed" for m in msgs)

    await rig.until(both_suppressed, "both messages recorded suppressed")
    assert {m["reason"] for m in await rig.messages(client_id=client_id)} == {"no_consent"}
    await rig.after_a_sending_round()
    assert await rig.on_phone(phone) == []


async def test_interest_posted_at_night_waits_for_the_morning_a_deposit_does_not(
        rig: Rig) -> None:
    client_id, phone = await rig.register()
    rig.clock.set_local(23, 30)
    await rig.publish(interest(client_id), key=client_id)
    queued = await rig.wait_message({"queued"}, client_id=client_id)
    release = dt.datetime.fromisoformat(queued["not_before"]).astimezone(CASABLANCA)
    assert (release.hour, release.minute) == (8, 0)
    await rig.publish(deposit(client_id), key=client_id)

    async def deposit_delivered() -> bool:
        return any(m["template"] == "deposit_received" and m["status"] == "delivered"
                   for m in await rig.messages(client_id=client_id))

    await rig.until(deposit_delivered, "the deposit confirmation, urgent")
    assert [m["text"][:22] for m in await rig.on_phone(phone)] == ["Noria: nous avons recu"]
