"""A trigger that arrives before its client is held, then sent once the client is known.

clients.events and loans.events/payments.events are consumed independently: after
a restart with a backlog, a LoanDisbursed can be applied before the client's
ClientRegistered. The borrower must still get the SMS, exactly once, in their
language, with their consent checked; unless the event is too old by then.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.notifications.consumers import handler_table
from services.notifications.handlers.held import expire_held
from services.notifications.handlers.policies import Policies
from shared.contracts.clients import ClientKycVerified, ClientRegistered
from shared.contracts.loans import LoanApproved
from shared.contracts.payments import RefundFailed, RefundIssued
from shared.contracts.savings import payment_reference
from shared.envelope import Contract, Envelope, envelope_for
from shared.inbox import Handler, InboxConsumer, RawMessage
from shared.uow import UnitOfWork
from tests.integration.notifications.conftest import Rig
from tests.integration.notifications.events import (
    account_id,
    account_opened,
    disbursed,
    due,
    loan_id,
)

pytestmark = pytest.mark.integration


def new_client() -> tuple[str, str]:
    return f"cl-held-{uuid.uuid4().hex[:10]}", f"+2126{random.randint(10**7, 10**8 - 1)}"


def registered(rig: Rig, client_id: str, phone: str, *, language: str = "fr",
               consent: bool = True) -> ClientRegistered:
    return ClientRegistered(client_id=client_id, partner_id=rig.partner_id,
                            full_name="Khadija Amrani", phone=phone,
                            language=language,
                            sms_consent=consent)


async def is_held(rig: Rig, event_id: uuid.UUID) -> bool:
    async with rig.pool.acquire() as conn:
        return bool(await conn.fetchval(
            "SELECT 1 FROM held_triggers WHERE source_event_id = $1", event_id))


async def held_for(rig: Rig, client_id: str) -> int:
    async with rig.pool.acquire() as conn:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM held_triggers WHERE client_id = $1", client_id)
        return n


async def wait_held(rig: Rig, env: Envelope) -> None:
    await rig.until(lambda: is_held(rig, env.event_id), f"{env.type} {env.event_id} held")


async def with_template(rig: Rig, client_id: str, template: str) -> list[dict[str, Any]]:
    return [m for m in await rig.messages(client_id=client_id) if m["template"] == template]


async def test_a_loan_disbursed_before_its_client_is_sent_once_when_the_client_registers(
        rig: Rig) -> None:
    client_id, phone = new_client()
    event = disbursed(client_id, phone)
    env = envelope_for(event, aggregate_id=event.loan_id)
    for _ in range(2):  # redelivered while held: still one held trigger
        await rig.publish_envelope(env, event.topic, event.loan_id)
    await wait_held(rig, env)

    assert await rig.messages(client_id=client_id) == []
    assert await rig.messages(loan_id=event.loan_id) == []
    assert await rig.on_phone(phone) == []
    stats = (await rig.api.get("/v1/sms/stats", headers=rig.operator)).json()
    assert stats["held_triggers"] >= 1

    reg = await rig.publish(registered(rig, client_id, phone, language="ar"), key=client_id)
    msg = await rig.wait_message({"delivered"}, client_id=client_id)
    assert msg["template"] == "loan_disbursed" and msg["phone"] == phone
    assert msg["language"] == "ar" and msg["encoding"] == "UCS-2"
    assert "تم تحويل قرضكم" in msg["text"] and "درهم" in msg["text"]
    assert msg["loan_id"] == event.loan_id
    on_phone = await rig.on_phone(phone)
    assert [m["text"] for m in on_phone] == [msg["text"]]
    assert not await is_held(rig, env.event_id)

    # Both events again: the inbox drops them, the unique message backs it up.
    await rig.publish_envelope(env, event.topic, event.loan_id)
    await rig.publish_envelope(reg, "clients.events", client_id)
    # Markers behind the copies on the same partitions: once they are handled, so were the copies.
    await rig.publish(due(client_id, loan=event.loan_id), key=event.loan_id)
    await rig.publish(ClientKycVerified(client_id=client_id, verified_by="op"), key=client_id)

    async def markers_handled() -> bool:
        templates = {m["template"] for m in await rig.messages(client_id=client_id)}
        return {"repayment_due", "kyc_verified"} <= templates

    await rig.until(markers_handled, "the marker events")
    assert len(await with_template(rig, client_id, "loan_disbursed")) == 1
    texts = [m["text"] for m in await rig.on_phone(phone)]
    assert texts.count(msg["text"]) == 1
    assert await held_for(rig, client_id) == 0


async def test_a_held_trigger_too_old_when_the_client_registers_is_not_sent(rig: Rig) -> None:
    client_id, phone = new_client()
    event = disbursed(client_id, phone)
    env = await rig.publish(event, key=event.loan_id)
    await wait_held(rig, env)

    rig.clock.set_local(12, 0, days=2)  # the client is registered two days later
    await rig.publish(registered(rig, client_id, phone, language="ar"), key=client_id)
    msg = await rig.wait_message({"suppressed"}, client_id=client_id)
    assert msg["reason"] == "stale_unknown_client" and msg["template"] == "loan_disbursed"
    assert msg["language"] == "ar" and msg["phone"] == phone
    assert not await is_held(rig, env.event_id)
    await rig.after_a_sending_round()
    assert await rig.on_phone(phone) == []
    assert (await rig.message(msg["id"]))["status"] == "suppressed"


async def test_a_trigger_already_too_old_on_arrival_is_suppressed_at_once(rig: Rig) -> None:
    client_id, phone = new_client()
    event = disbursed(client_id, phone)
    old = envelope_for(event, aggregate_id=event.loan_id).model_copy(
        update={"occurred_at": rig.clock() - dt.timedelta(hours=30)})
    await rig.publish_envelope(old, event.topic, event.loan_id)
    msg = await rig.wait_message({"suppressed"}, client_id=client_id)
    assert msg["reason"] == "stale_unknown_client"
    assert not await is_held(rig, old.event_id)

    await rig.publish(registered(rig, client_id, phone), key=client_id)
    await rig.publish(ClientKycVerified(client_id=client_id, verified_by="op"), key=client_id)
    await rig.until(lambda: _has(rig, client_id, "kyc_verified"), "the KYC message")
    assert len(await with_template(rig, client_id, "loan_disbursed")) == 1
    await rig.wait_message({"delivered"}, client_id=client_id)  # the KYC SMS went out
    assert msg["text"] not in [m["text"] for m in await rig.on_phone(phone)]


async def test_a_released_trigger_respects_a_missing_consent(rig: Rig) -> None:
    client_id, phone = new_client()
    event = disbursed(client_id, phone)
    env = await rig.publish(event, key=event.loan_id)
    await wait_held(rig, env)

    await rig.publish(registered(rig, client_id, phone, consent=False), key=client_id)
    msg = await rig.wait_message({"suppressed"}, client_id=client_id)
    assert msg["reason"] == "no_consent" and msg["template"] == "loan_disbursed"
    assert not await is_held(rig, env.event_id)
    await rig.after_a_sending_round()
    assert await rig.on_phone(phone) == []


async def test_an_event_held_through_the_loan_table_goes_to_the_payer(rig: Rig) -> None:
    """A refund names no client: the loan does (learnt from LoanApproved)."""
    client_id, phone = new_client()
    _, payer = new_client()
    loan = loan_id()
    await rig.publish(LoanApproved(loan_id=loan, client_id=client_id, approved_by="op",
                                   saga_id=str(uuid.uuid4())), key=loan)
    refund = await rig.publish(RefundIssued(loan_id=loan, payment_id=str(uuid.uuid4()),
                                            amount=Decimal("120.00"), msisdn=payer,
                                            reason="overpayment"), key=loan)
    await wait_held(rig, refund)
    assert await rig.messages(loan_id=loan) == []

    await rig.publish(registered(rig, client_id, phone), key=client_id)
    msg = await rig.wait_message({"delivered"}, loan_id=loan)
    assert msg["template"] == "refund_issued" and msg["phone"] == payer
    assert msg["client_id"] == client_id
    assert len(await rig.on_phone(payer)) == 1 and await rig.on_phone(phone) == []


async def test_a_refund_with_no_client_at_all_is_suppressed_as_before(rig: Rig) -> None:
    loan = loan_id()  # never seen: no client to wait for
    _, payer = new_client()
    refund = await rig.publish(RefundIssued(loan_id=loan, payment_id=str(uuid.uuid4()),
                                            amount=Decimal("80.00"), msisdn=payer,
                                            reason="unknown loan"), key=loan)
    msg = await rig.wait_message({"suppressed"}, loan_id=loan)
    assert msg["reason"] == "unknown_client" and msg["template"] == "refund_issued"
    assert not await is_held(rig, refund.event_id)
    assert await rig.on_phone(payer) == []


async def test_a_savings_refund_before_its_account_is_known_waits_for_the_account(
        rig: Rig) -> None:
    """payments.events and savings.events are read concurrently: a failed refund of a
    deposit can be applied before the account's SavingsAccountOpened. The holder still
    gets the one SMS, in Arabic, once the account is known."""
    client_id, phone = new_client()
    await rig.publish(registered(rig, client_id, phone, language="ar"), key=client_id)
    account = account_id()
    event = RefundFailed(loan_id=payment_reference(account), payment_id=str(uuid.uuid4()),
                         amount=Decimal("300.00"), reason="wallet_closed")
    env = envelope_for(event, aggregate_id=event.loan_id)
    for _ in range(2):  # redelivered while held: still one held trigger
        await rig.publish_envelope(env, event.topic, event.loan_id)
    await wait_held(rig, env)
    assert await rig.messages(client_id=client_id) == []

    await rig.publish(account_opened(client_id, account), key=account)
    msg = await rig.wait_message({"delivered"}, client_id=client_id)
    assert msg["template"] == "savings_refund_failed" and msg["language"] == "ar"
    assert "300,00 درهم" in msg["text"] and msg["phone"] == phone
    assert not await is_held(rig, env.event_id)
    await rig.consumed_all()
    assert [m["template"] for m in await rig.messages(client_id=client_id)] == [
        "savings_refund_failed"]
    assert [m["text"] for m in await rig.on_phone(phone)] == [msg["text"]]


async def test_a_savings_refund_for_an_account_never_opened_is_settled_stale(
        rig: Rig) -> None:
    account = account_id()
    event = RefundFailed(loan_id=payment_reference(account), payment_id=str(uuid.uuid4()),
                         amount=Decimal("300.00"), reason="wallet_closed")
    env = await rig.publish(event, key=event.loan_id)
    await wait_held(rig, env)

    rig.clock.set_local(12, 0, days=2)  # the account never appeared
    async with UnitOfWork(rig.pool) as uow:
        assert await expire_held(uow, Policies(clock=rig.clock)) >= 1
        await uow.commit()
    assert not await is_held(rig, env.event_id)
    async with rig.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT template, status, reason FROM messages WHERE source_event_id = $1",
            env.event_id)
    assert row is not None
    assert dict(row) == {"template": "savings_refund_failed", "status": "suppressed",
                         "reason": "stale_unknown_client"}


async def test_registration_racing_the_trigger_never_strands_it(rig: Rig) -> None:
    """The two consumers apply a client's trigger and registration at the same moment."""
    table = handler_table(Policies(clock=rig.clock))
    clients = [new_client() for _ in range(12)]

    async def apply(event: Contract, key: str) -> None:
        env = envelope_for(event, aggregate_id=key)
        async with UnitOfWork(rig.pool) as uow:
            await table[env.type](uow, event, env)
            await uow.commit()

    work = []
    for client_id, phone in clients:
        event = disbursed(client_id, phone)
        work += [apply(event, event.loan_id),
                 apply(registered(rig, client_id, phone), client_id)]
    await asyncio.gather(*work)

    for client_id, _ in clients:
        msgs = await rig.messages(client_id=client_id)
        assert [m["template"] for m in msgs] == ["loan_disbursed"], client_id
        assert msgs[0]["status"] in {"queued", "submitted", "delivered"}, msgs[0]
        assert await held_for(rig, client_id) == 0


async def test_a_trigger_waits_for_a_registration_in_progress(rig: Rig) -> None:
    """The registration has upserted and found nothing held, but not committed yet."""
    table = handler_table(Policies(clock=rig.clock))
    client_id, phone = new_client()
    event = disbursed(client_id, phone)
    trig_env = envelope_for(event, aggregate_id=event.loan_id)
    reg = registered(rig, client_id, phone)

    async def trigger() -> None:
        async with UnitOfWork(rig.pool) as uow:
            await table["LoanDisbursed"](uow, event, trig_env)
            await uow.commit()

    async with UnitOfWork(rig.pool) as reg_uow:
        await table["ClientRegistered"](reg_uow, reg, envelope_for(reg, aggregate_id=client_id))
        task = asyncio.create_task(trigger())

        async def trigger_waits_for_the_client_lock() -> bool:
            async with rig.pool.acquire() as conn:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND objid = (hashtextextended($1, 0) & 4294967295)::oid"
                    " AND classid = ((hashtextextended($1, 0) >> 32) & 4294967295)::oid",
                    f"noria.notifications.client:{client_id}")
            return bool(waiting) or task.done()

        await rig.until(trigger_waits_for_the_client_lock, "the trigger to reach the lock")
        await reg_uow.commit()
    await task

    msgs = await rig.messages(client_id=client_id)
    assert [m["template"] for m in msgs] == ["loan_disbursed"]
    assert msgs[0]["status"] in {"queued", "submitted", "delivered"}
    assert await held_for(rig, client_id) == 0


async def test_a_deadlock_between_two_batches_is_retried_not_dead_lettered(rig: Rig) -> None:
    """Triggers for A then B in one transaction, registrations of B then A in another.

    Each takes its first client's lock, then waits for the other's: PostgreSQL aborts
    one; the inbox replays that batch one event at a time and every SMS is made once.
    """
    (a, phone_a), (b, phone_b) = new_client(), new_client()
    group = f"notifications-test-{uuid.uuid4().hex[:8]}"
    base = handler_table(Policies(clock=rig.clock))
    barrier = asyncio.Barrier(2)
    first_of_batch: set[uuid.UUID] = set()
    errors: list[str] = []

    def pausing(inner: Handler) -> Handler:
        async def handle(uow: UnitOfWork, event: Any, env: Envelope) -> None:
            try:
                await inner(uow, event, env)
            except Exception as exc:
                errors.append(type(exc).__name__)
                raise
            if env.event_id in first_of_batch:  # both batches hold one lock: go on together
                first_of_batch.discard(env.event_id)
                await asyncio.wait_for(barrier.wait(), 10)

        return handle

    dead: list[Any] = []

    async def no_dlq() -> AIOKafkaProducer:
        dead.append("dlq")
        raise AssertionError("nothing may be dead-lettered")

    def no_consumer() -> AIOKafkaConsumer:
        raise AssertionError("driven directly")

    inbox = InboxConsumer(service="notifications", group=group, topics=[],
                          handlers={t: pausing(h) for t, h in base.items()}, pool=rig.pool,
                          consumer_factory=no_consumer, dlq_producer=no_dlq,
                          retry_backoff_s=0.05)

    def raw(event: Contract, key: str, offset: int) -> tuple[RawMessage, Envelope]:
        env = envelope_for(event, aggregate_id=key)
        return RawMessage(topic=event.topic, partition=0, offset=offset, key=key.encode(),
                          value=env.to_bytes(), headers=[("type", env.type.encode())]), env

    trig_a, env_ta = raw(disbursed(a, phone_a), a, 1)
    trig_b, _ = raw(disbursed(b, phone_b), b, 2)
    reg_b, env_rb = raw(registered(rig, b, phone_b), b, 1)
    reg_a, _ = raw(registered(rig, a, phone_a), a, 2)
    first_of_batch.update({env_ta.event_id, env_rb.event_id})

    await asyncio.gather(inbox.process_many([trig_a, trig_b]),
                         inbox.process_many([reg_b, reg_a]))

    assert "DeadlockDetectedError" in errors
    assert dead == []
    async with rig.pool.acquire() as conn:
        letters = await conn.fetchval(
            "SELECT count(*) FROM dead_letters WHERE consumer = $1", group)
        inbox_rows = await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", group)
    assert letters == 0 and inbox_rows == 4
    for client_id in (a, b):
        assert [m["template"] for m in await rig.messages(client_id=client_id)] == [
            "loan_disbursed"]
        assert await held_for(rig, client_id) == 0


async def _has(rig: Rig, client_id: str, template: str) -> bool:
    return bool(await with_template(rig, client_id, template))



async def test_a_trigger_whose_client_never_registers_is_settled_stale_not_kept(
        rig: Rig) -> None:
    client_id, phone = new_client()
    event = disbursed(client_id, phone)
    env = await rig.publish(event, key=event.loan_id)
    await wait_held(rig, env)
    policies = Policies(clock=rig.clock)
    async with UnitOfWork(rig.pool) as uow:  # a day has not passed: nothing to settle
        await expire_held(uow, policies)
        await uow.commit()
    assert await is_held(rig, env.event_id)

    rig.clock.set_local(12, 0, days=2)  # the client never registered
    async with UnitOfWork(rig.pool) as uow:
        assert await expire_held(uow, policies) >= 1
        await uow.commit()
    assert not await is_held(rig, env.event_id)
    [msg] = await with_template(rig, client_id, "loan_disbursed")
    assert (msg["status"], msg["reason"]) == ("suppressed", "stale_unknown_client")

    # registering afterwards sends nothing about that old event
    await rig.publish(registered(rig, client_id, phone), key=client_id)
    await rig.publish(ClientKycVerified(client_id=client_id, verified_by="op"), key=client_id)
    await rig.until(lambda: _has(rig, client_id, "kyc_verified"), "the KYC message")
    assert len(await with_template(rig, client_id, "loan_disbursed")) == 1
    assert msg["text"] not in [m["text"] for m in await rig.on_phone(phone)]
