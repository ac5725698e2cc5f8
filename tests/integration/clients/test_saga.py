"""The saga participant over real Kafka: ReserveCredit / ReleaseCredit, and the loans
events that turn a reservation into outstanding principal and grow the limit."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from services.clients.handlers import credit as handlers
from shared.contracts.clients import ReleaseCredit, ReserveCredit
from shared.contracts.loans import (
    AllocationLine,
    LoanClosed,
    LoanDisbursed,
    LoanWrittenOff,
    RepaymentApplied,
)
from tests.integration.clients.conftest import PREFIX, Service, new_partner, token
from tests.integration.clients.facts import consumed, emitted

pytestmark = pytest.mark.integration
D = Decimal


def reserve(client_id: str, amount: str, reservation_id: str | None = None) -> ReserveCredit:
    rid = reservation_id or f"saga-{uuid.uuid4().hex[:10]}"
    return ReserveCredit(client_id=client_id, reservation_id=rid, saga_id=rid,
                         loan_id=f"loan-{rid}", amount=D(amount))


def disbursed(cmd: ReserveCredit, phone: str) -> LoanDisbursed:
    today = dt.date(2026, 3, 2)
    return LoanDisbursed(
        loan_id=cmd.loan_id, client_id=cmd.client_id, partner_id="p", saga_id=cmd.saga_id,
        principal=cmd.amount, msisdn=phone, disbursed_on=today, installments=3,
        first_due_date=today + dt.timedelta(days=30), first_due_amount=D("1100.00"),
        total_repayable=D("3300.00"), fees_at_disbursement=D("0.00"))


def repaid(cmd: ReserveCredit, principal_paid: str, outstanding: str) -> RepaymentApplied:
    return RepaymentApplied(
        loan_id=cmd.loan_id, client_id=cmd.client_id, payment_id=uuid.uuid4().hex,
        amount=D(principal_paid) + D("100.00"),
        allocation=[AllocationLine(installment=1, component="interest", amount=D("100.00")),
                    AllocationLine(installment=1, component="principal",
                                   amount=D(principal_paid))],
        principal_paid=D(principal_paid), interest_paid=D("100.00"), fees_paid=D("0.00"),
        penalties_paid=D("0.00"), outstanding_principal=D(outstanding),
        outstanding_total=D(outstanding), next_due_date=None, next_due_amount=None,
        closes_loan=D(outstanding) == 0)


async def reply_to(svc: Service, cmd: ReserveCredit, *, count: int = 1) -> dict[str, object]:
    envs = await svc.events.wait_for(
        lambda k, e: k == cmd.client_id and e.type in ("CreditReserved", "CreditRejected")
        and e.payload["reservation_id"] == cmd.reservation_id, count=count, timeout_s=60)
    return {"type": envs[-1].type, **envs[-1].payload}


async def wait_credit(svc: Service, client_id: str, **expected: str | int) -> dict[str, Any]:
    for _ in range(300):
        credit = await svc.credit(client_id)
        if all(credit[k] == v for k, v in expected.items()):
            return credit
        await asyncio.sleep(0.1)
    raise AssertionError(f"credit never reached {expected}: {credit}")


async def test_reserve_is_granted_with_the_wallet_number_and_is_idempotent(svc: Service) -> None:
    client = await svc.verified_client(new_partner(), language="ar")
    cmd = reserve(client["id"], "3000.00")
    await svc.send(cmd, key=client["id"])
    reply = await reply_to(svc, cmd)
    assert reply["type"] == "CreditReserved"
    assert (reply["amount"], reply["exposure"], reply["credit_limit"]) == (
        "3000.00", "3000.00", "5000.00")
    assert (reply["msisdn"], reply["language"]) == (client["phone"], "ar")
    assert reply["saga_id"] == cmd.saga_id and reply["loan_id"] == cmd.loan_id

    # The orchestrator retries (a new message, the same reservation id): same answer,
    # no second reservation.
    await svc.send(cmd, key=client["id"])
    again = await reply_to(svc, cmd, count=2)
    assert again["type"] == "CreditReserved" and again["exposure"] == "3000.00"
    credit = await svc.credit(client["id"])
    assert (credit["reserved"], credit["exposure"], credit["available"]) == (
        "3000.00", "3000.00", "2000.00")


async def test_refusals_carry_the_reason(svc: Service) -> None:
    partner = new_partner()
    pending = await svc.register(token("partner", partner=partner))
    blocked = await svc.verified_client(partner)
    await svc.http.post(f"/v1/clients/{blocked['id']}/block", json={"reason": "fraud"},
                        headers=token("operator"))
    full = await svc.verified_client(partner)
    cases = [
        (reserve(pending["id"], "100.00"), "kyc_not_verified"),
        (reserve(blocked["id"], "100.00"), "client_blocked"),
        (reserve(f"ghost-{uuid.uuid4().hex[:8]}", "100.00"), "unknown_client"),
        (reserve(full["id"], "5000.01"), "limit_exceeded"),
    ]
    for cmd, _ in cases:
        await svc.send(cmd, key=cmd.client_id)
    for cmd, reason in cases:
        reply = await reply_to(svc, cmd)
        assert (reply["type"], reply["reason"]) == ("CreditRejected", reason)
    assert (await svc.credit(full["id"]))["exposure"] == "0.00"


async def test_release_gives_the_credit_back_once(svc: Service) -> None:
    client = await svc.verified_client(new_partner())
    cmd = reserve(client["id"], "2000.00")
    await svc.send(cmd, key=client["id"])
    assert (await reply_to(svc, cmd))["type"] == "CreditReserved"
    release = ReleaseCredit(client_id=client["id"], reservation_id=cmd.reservation_id,
                            saga_id=cmd.saga_id, loan_id=cmd.loan_id, reason="payout failed")
    await svc.send(release, key=client["id"])
    [env] = await svc.events.of(client["id"], "CreditReleased", timeout_s=60)
    assert env.payload["amount"] == "2000.00"
    await svc.send(release, key=client["id"])
    await svc.events.of(client["id"], "CreditReleased", count=2, timeout_s=60)
    credit = await svc.credit(client["id"])
    assert (credit["reserved"], credit["available"]) == ("0.00", "5000.00")
    # A late retry of the reservation cannot take the credit again.
    await svc.send(cmd, key=client["id"])
    await consumed(svc)  # the late retry was read
    assert (await svc.credit(client["id"]))["reserved"] == "0.00"


async def test_two_reservations_racing_never_exceed_the_limit(svc: Service) -> None:
    """Concurrent handlers on separate transactions, like two consumers or replicas."""
    for _ in range(5):
        client = await svc.verified_client(new_partner())
        a, b = reserve(client["id"], "3000.00"), reserve(client["id"], "3000.00")

        async def run(cmd: ReserveCredit) -> None:
            uow = svc.runtime.uow()  # the service's own (its topic prefix)
            async with uow:
                await handlers.reserve_credit(uow, cmd)
                await uow.commit()

        await asyncio.gather(run(a), run(b))
        replies = [await reply_to(svc, a), await reply_to(svc, b)]
        assert sorted(str(r["type"]) for r in replies) == ["CreditRejected", "CreditReserved"]
        assert [r["reason"] for r in replies if r["type"] == "CreditRejected"] == [
            "limit_exceeded"]
        credit = await svc.credit(client["id"])
        assert (credit["reserved"], credit["exposure"]) == ("3000.00", "3000.00")


async def test_two_reservations_over_kafka_share_the_limit(svc: Service) -> None:
    client = await svc.verified_client(new_partner())
    a, b = reserve(client["id"], "3000.00"), reserve(client["id"], "2500.00")
    await asyncio.gather(svc.send(a, key=client["id"]), svc.send(b, key=client["id"]))
    replies = [await reply_to(svc, a), await reply_to(svc, b)]
    assert sorted(str(r["type"]) for r in replies) == ["CreditRejected", "CreditReserved"]
    credit = await svc.credit(client["id"])
    assert D(str(credit["exposure"])) <= D("5000.00")


async def test_a_loan_repaid_in_full_frees_exposure_and_grows_the_limit(svc: Service) -> None:
    client = await svc.verified_client(new_partner())
    cid = client["id"]
    cmd = reserve(cid, "3000.00")
    await svc.send(cmd, key=cid)
    assert (await reply_to(svc, cmd))["type"] == "CreditReserved"

    reserved = await svc.credit(cid)
    assert [(line["loan_id"], line["status"], line["amount"]) for line in reserved["loans"]] == [
        (cmd.loan_id, "reserved", "3000.00")]
    await svc.send(disbursed(cmd, client["phone"]), key=cmd.loan_id)
    active = await wait_credit(svc, cid, reserved="0.00", outstanding="3000.00",
                               exposure="3000.00")
    lines = [(line["status"], line["outstanding"]) for line in active["loans"]]
    assert lines == [("outstanding", "3000.00")]

    await svc.send(repaid(cmd, "2000.00", "1000.00"), key=cmd.loan_id)
    await wait_credit(svc, cid, outstanding="1000.00", available="4000.00")

    closed = LoanClosed(loan_id=cmd.loan_id, client_id=cid, principal=D("3000.00"),
                        closed_on=dt.date(2026, 5, 2))
    env = await svc.send(closed, key=cmd.loan_id)
    credit = await wait_credit(svc, cid, credit_limit="7500.00")
    assert (credit["exposure"], credit["cycle"], credit["available"]) == ("0.00", 2, "7500.00")
    assert credit["loans"] == []
    [changed] = await svc.events.of(cid, "CreditLimitChanged")
    assert (changed.payload["credit_limit"], changed.payload["cycle"],
            changed.payload["previous_limit"]) == ("7500.00", 2, "5000.00")
    assert changed.payload["phone"] == client["phone"]

    # The same event redelivered, or the close announced twice, grows nothing more.
    await svc.producer.send_and_wait(f"{PREFIX}loans.events", value=env.to_bytes(),
                                     key=cmd.loan_id.encode(), headers=[("type", b"LoanClosed")])
    await svc.send(closed, key=cmd.loan_id)
    await consumed(svc)  # both read
    credit = await svc.credit(cid)
    assert (credit["credit_limit"], credit["cycle"]) == ("7500.00", 2)
    assert await emitted(svc, cid, "CreditLimitChanged") == 1
    assert len(svc.events.now(cid, "CreditLimitChanged")) == 1

    # The next cycle can borrow the bigger limit.
    big = reserve(cid, "7500.00")
    await svc.send(big, key=cid)
    assert (await reply_to(svc, big))["type"] == "CreditReserved"


async def test_a_written_off_loan_frees_exposure_without_growing_the_limit(svc: Service
                                                                          ) -> None:
    client = await svc.verified_client(new_partner())
    cid = client["id"]
    cmd = reserve(cid, "4000.00")
    await svc.send(cmd, key=cid)
    assert (await reply_to(svc, cmd))["type"] == "CreditReserved"
    await svc.send(disbursed(cmd, client["phone"]), key=cmd.loan_id)
    await wait_credit(svc, cid, outstanding="4000.00")
    await svc.send(LoanWrittenOff(
        loan_id=cmd.loan_id, client_id=cid, principal_written_off=D("4000.00"),
        interest_written_off=D("0.00"), fees_written_off=D("0.00"),
        penalties_written_off=D("0.00"), written_off_by="ops", days_in_arrears=181),
        key=cmd.loan_id)
    credit = await wait_credit(svc, cid, outstanding="0.00")
    assert (credit["credit_limit"], credit["cycle"], credit["exposure"]) == ("5000.00", 1,
                                                                             "0.00")


async def test_events_about_loans_we_never_reserved_are_ignored_not_dead_lettered(
        svc: Service) -> None:
    ghost = reserve(f"ghost-{uuid.uuid4().hex[:8]}", "100.00")
    sent = [
        await svc.send(disbursed(ghost, "+212600000000"), key=ghost.loan_id),
        await svc.send(repaid(ghost, "100.00", "0.00"), key=ghost.loan_id),
        await svc.send(LoanClosed(loan_id=ghost.loan_id, client_id=ghost.client_id,
                                  principal=D("100.00"), closed_on=dt.date(2026, 1, 1)),
                       key=ghost.loan_id),
    ]
    ids = [env.event_id for env in sent]
    for _ in range(600):
        handled = await svc.rows(
            "SELECT event_id FROM inbox WHERE event_id = ANY($1)", ids)
        if len(handled) == len(ids):
            break
        await asyncio.sleep(0.1)
    assert len(handled) == len(ids), "the consumer never handled the events"
    assert await svc.rows("SELECT 1 FROM dead_letters WHERE message_key = $1",
                          ghost.loan_id) == []
    assert await svc.rows("SELECT 1 FROM reservations WHERE loan_id = $1", ghost.loan_id) == []
