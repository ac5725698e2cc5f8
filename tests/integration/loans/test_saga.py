"""The disbursement saga on the real broker and database, loans acting as orchestrator.

The test plays clients and payments: it reads the commands loans sends and
answers with their contracts on Kafka.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from shared.contracts.clients import CreditRejected, CreditReleased, CreditReserved
from shared.contracts.payments import (
    DisbursementCompleted,
    DisbursementFailed,
    DisbursementInDoubt,
)
from tests.infra import Infra
from tests.integration.loans.facts import consumed_everything, output_reader, settled
from tests.integration.loans.harness import running_loans

pytestmark = pytest.mark.integration


async def test_happy_path_reserves_disburses_and_activates_with_the_previewed_schedule(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        loan = await svc.apply(client_id, product, "1200.00", 4)
        preview = loan["schedule"]
        assert loan["status"] == "submitted"
        assert [i["total"] for i in preview] == ["312.00"] * 4

        saga_id = await svc.approve(loan["id"])
        approved = await svc.bus.wait_for("LoanApproved", loan_id=loan["id"])
        assert approved[0].payload["approved_by"] == "op-checker"
        reserve = (await svc.bus.wait_for("ReserveCredit", saga_id=saga_id))[0]
        assert reserve.topic == "clients.commands" and reserve.key == client_id
        assert reserve.payload["amount"] == "1200.00"
        assert reserve.payload["reservation_id"] == saga_id

        await svc.reserve(saga_id, loan["id"], client_id)
        disburse = (await svc.bus.wait_for("DisburseLoan", saga_id=saga_id))[0]
        assert disburse.topic == "payments.commands" and disburse.key == loan["id"]
        assert disburse.payload["amount"] == "1200.00"
        assert disburse.payload["msisdn"] == "+212612345678"
        assert (await svc.get(loan["id"]))["status"] == "disbursing"

        await svc.complete(saga_id, loan["id"], client_id, "1200.00", date(2026, 1, 31))
        disbursed = (await svc.bus.wait_for("LoanDisbursed", loan_id=loan["id"]))[0].payload
        assert disbursed["disbursed_on"] == "2026-01-31"
        # month-end clamped to 28 Feb 2026, a Saturday: the next working day
        assert disbursed["first_due_date"] == "2026-03-02"
        assert disbursed["first_due_amount"] == "312.00"
        assert disbursed["total_repayable"] == "1248.00"
        active = await svc.wait_status(loan["id"], "active")
        assert active["outstanding"]["principal"] == "1200.00"

        schedule = (await svc.client.get(f"/v1/loans/{loan['id']}/schedule",
                                         headers=svc.partner)).json()["installments"]
        # Same amounts as the preview, dates re-anchored to the disbursement date.
        assert [(i["principal"], i["interest"], i["fees"]) for i in schedule] == [
            (i["principal"], i["interest"], i["fees"]) for i in preview]
        # 28 Feb and 31 May 2026 fall on a weekend: moved to the next working day
        assert [i["due_date"] for i in schedule] == [
            "2026-03-02", "2026-03-31", "2026-04-30", "2026-06-01"]

        saga = (await svc.client.get(f"/v1/sagas/{saga_id}", headers=svc.operator)).json()
        assert saga["state"] == "completed" and saga["failed"] is False
        assert [t["to_state"] for t in saga["timeline"]] == [
            "reserving_credit", "disbursing", "completed"]


async def test_credit_rejected_ends_the_saga_and_rejects_the_loan(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        loan = await svc.apply(client_id, product)
        saga_id = await svc.approve(loan["id"])
        await svc.bus.wait_for("ReserveCredit", saga_id=saga_id)
        await svc.bus.send(CreditRejected(
            client_id=client_id, reservation_id=saga_id, saga_id=saga_id, loan_id=loan["id"],
            reason="limit_exceeded", detail="exposure 9000.00 + 1200.00 > 5000.00"),
            key=client_id)
        rejected = (await svc.bus.wait_for("LoanRejected", loan_id=loan["id"]))[0].payload
        assert "limit_exceeded" in rejected["reason"]
        body = await svc.wait_status(loan["id"], "rejected")
        assert body["allowed_actions"] == []
        async with output_reader(svc) as sent:
            await settled(svc, sent)   # all it wrote is on Kafka and read
            assert sent.matching("DisburseLoan", saga_id=saga_id) == []
        saga = (await svc.client.get(f"/v1/sagas/{saga_id}", headers=svc.operator)).json()
        assert saga["state"] == "credit_rejected" and saga["deadline"] is None


async def test_failed_payout_is_compensated_by_releasing_the_credit(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        loan = await svc.apply(client_id, product)
        saga_id = await svc.approve(loan["id"])
        await svc.bus.wait_for("ReserveCredit", saga_id=saga_id)
        await svc.reserve(saga_id, loan["id"], client_id)
        await svc.bus.wait_for("DisburseLoan", saga_id=saga_id)
        await svc.bus.send(DisbursementFailed(
            loan_id=loan["id"], saga_id=saga_id, client_id=client_id,
            amount=Decimal("1200.00"), reason="wallet_not_found", provider="simulator"),
            key=loan["id"])
        release = (await svc.bus.wait_for("ReleaseCredit", saga_id=saga_id))[0]
        assert release.topic == "clients.commands" and release.key == client_id
        assert release.payload["reservation_id"] == saga_id
        failed = (await svc.bus.wait_for("LoanDisbursementFailed", loan_id=loan["id"]))[0]
        assert "wallet_not_found" in failed.payload["reason"]
        await svc.wait_status(loan["id"], "disbursement_failed")
        saga = (await svc.client.get(f"/v1/sagas/{saga_id}", headers=svc.operator)).json()
        assert saga["state"] == "compensating" and saga["compensating"] is True

        await svc.bus.send(CreditReleased(
            client_id=client_id, reservation_id=saga_id, saga_id=saga_id, loan_id=loan["id"],
            amount=Decimal("1200.00")), key=client_id)
        await svc.wait_until(f"SELECT 1 FROM sagas WHERE id = '{saga_id}'"
                             " AND state = 'compensated'")
        assert svc.bus.matching("LoanDisbursed", loan_id=loan["id"]) == []


async def test_payout_never_answered_is_resent_then_in_doubt_and_the_provider_settles_it(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema, saga_payout_timeout_s=1.0,
                             saga_payout_grace_s=1.0, saga_max_resends=1) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        loan = await svc.apply(client_id, product)
        saga_id = await svc.approve(loan["id"])
        await svc.bus.wait_for("ReserveCredit", saga_id=saga_id)
        await svc.reserve(saga_id, loan["id"], client_id)
        first = (await svc.bus.wait_for("DisburseLoan", saga_id=saga_id))[0]
        # Nobody answers: the sweeper re-sends the same payout once (payments is
        # idempotent on the saga id); then the payout is in doubt, not failed.
        resent = await svc.bus.wait_for("DisburseLoan", count=2, saga_id=saga_id)
        assert resent[1].payload == first.payload
        await svc.wait_until(f"SELECT 1 FROM sagas WHERE id = '{saga_id}'"
                             " AND state = 'in_doubt'")

        listing = (await svc.client.get("/v1/sagas", params={"state": "in_doubt"},
                                        headers=svc.operator)).json()
        assert [s["id"] for s in listing["items"]] == [saga_id]
        assert listing["counts"]["in_doubt"] == 1 and "failed" not in listing["counts"]
        assert listing["items"][0]["in_doubt_since"] is not None
        assert listing["items"][0]["age_s"] >= 0
        saga = (await svc.client.get(f"/v1/sagas/{saga_id}", headers=svc.operator)).json()
        assert saga["state"] == "in_doubt" and saga["deadline"] is None
        assert saga["failed"] is False and saga["compensating"] is False
        assert "in doubt" in saga["timeline"][-1]["detail"]
        assert [t["event"] for t in saga["timeline"]][-2:] == ["DeadlinePassed",
                                                               "DeadlinePassed"]
        # The money's fate is unknown, so nothing is compensated.
        assert (await svc.get(loan["id"]))["status"] == "disbursing"
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert sent.matching("ReleaseCredit", saga_id=saga_id) == []
            assert sent.matching("LoanDisbursementFailed", loan_id=loan["id"]) == []
            assert len(sent.matching("DisburseLoan", saga_id=saga_id)) == 2

        await svc.complete(saga_id, loan["id"], client_id, "1200.00")
        await svc.wait_status(loan["id"], "active")
        saga = (await svc.client.get(f"/v1/sagas/{saga_id}", headers=svc.operator)).json()
        assert saga["state"] == "completed" and saga["failed"] is False
        assert saga["in_doubt_since"] is None and saga["age_s"] is None


async def test_payments_in_doubt_then_completed_never_fails_the_loan_nor_releases_credit(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        loan = await svc.apply(client_id, product)
        saga_id = await svc.approve(loan["id"])
        await svc.bus.wait_for("ReserveCredit", saga_id=saga_id)
        await svc.reserve(saga_id, loan["id"], client_id)
        await svc.bus.wait_for("DisburseLoan", saga_id=saga_id)

        statuses: list[str] = []
        stop = asyncio.Event()

        async def watch() -> None:   # every status the loan shows while this runs
            while not stop.is_set():
                async with svc.pool.acquire() as conn:
                    statuses.append(await conn.fetchval(
                        "SELECT status FROM loans WHERE id = $1", loan["id"]))
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch())
        try:
            since = datetime.now(UTC) - timedelta(minutes=3)
            await svc.bus.send(DisbursementInDoubt(
                loan_id=loan["id"], saga_id=saga_id, client_id=client_id,
                amount=Decimal("1200.00"), provider="simulator",
                reason="no answer from the provider by the deadline", since=since),
                key=loan["id"])
            await svc.wait_until(
                f"SELECT 1 FROM saga_timeline WHERE saga_id = '{saga_id}'"
                " AND event = 'DisbursementInDoubt' AND to_state = 'in_doubt'")
            listing = (await svc.client.get("/v1/sagas", params={"state": "in_doubt"},
                                            headers=svc.operator)).json()
            [item] = listing["items"]
            assert item["id"] == saga_id and item["deadline"] is None
            assert datetime.fromisoformat(item["in_doubt_since"]) == since
            assert item["age_s"] >= 180
            assert listing["counts"] == {"in_doubt": 1}
            assert (await svc.get(loan["id"]))["status"] == "disbursing"

            await svc.complete(saga_id, loan["id"], client_id, "1200.00")
            await svc.wait_status(loan["id"], "active")
        finally:
            stop.set()
            await watcher
        assert "disbursement_failed" not in statuses
        assert statuses[0] == "disbursing" and statuses[-1] == "active"
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert sent.matching("ReleaseCredit", topic="clients.commands") == []
            assert sent.matching("LoanDisbursementFailed") == []
            assert len(sent.matching("LoanDisbursed", loan_id=loan["id"])) == 1
        saga = (await svc.client.get(f"/v1/sagas/{saga_id}", headers=svc.operator)).json()
        assert [t["to_state"] for t in saga["timeline"]] == [
            "reserving_credit", "disbursing", "in_doubt", "completed"]


async def test_in_doubt_then_failed_is_compensated(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        loan = await svc.apply(client_id, product)
        saga_id = await svc.approve(loan["id"])
        await svc.bus.wait_for("ReserveCredit", saga_id=saga_id)
        await svc.reserve(saga_id, loan["id"], client_id)
        await svc.bus.wait_for("DisburseLoan", saga_id=saga_id)
        await svc.bus.send(DisbursementInDoubt(
            loan_id=loan["id"], saga_id=saga_id, client_id=client_id,
            amount=Decimal("1200.00"), provider="simulator", reason="timeout",
            since=datetime.now(UTC)), key=loan["id"])
        await svc.wait_until(f"SELECT 1 FROM sagas WHERE id = '{saga_id}'"
                             " AND state = 'in_doubt'")
        await svc.bus.send(DisbursementFailed(
            loan_id=loan["id"], saga_id=saga_id, client_id=client_id,
            amount=Decimal("1200.00"), reason="provider_says_not_executed",
            provider="simulator"), key=loan["id"])
        release = (await svc.bus.wait_for("ReleaseCredit", saga_id=saga_id))[0]
        assert release.key == client_id
        await svc.wait_status(loan["id"], "disbursement_failed")


async def test_duplicated_replies_take_effect_once(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        loan = await svc.apply(client_id, product)
        saga_id = await svc.approve(loan["id"])
        await svc.bus.wait_for("ReserveCredit", saga_id=saga_id)
        reserved = await svc.reserve(saga_id, loan["id"], client_id)
        # the same record redelivered, and the same reply published twice
        await svc.bus.send(CreditRejected(
            client_id=client_id, reservation_id=saga_id, saga_id=saga_id, loan_id=loan["id"],
            reason="limit_exceeded"), key=client_id)
        await svc.reserve(saga_id, loan["id"], client_id)
        await svc.bus.send(CreditReserved.model_validate(reserved.payload), key=client_id,
                           env=reserved)
        await svc.bus.wait_for("DisburseLoan", saga_id=saga_id)
        done = await svc.complete(saga_id, loan["id"], client_id, "1200.00")
        await svc.complete(saga_id, loan["id"], client_id, "1200.00")
        await svc.bus.send(DisbursementCompleted.model_validate(done.payload), key=loan["id"],
                           env=done)
        await svc.wait_status(loan["id"], "active")
        # two distinct completions reach the saga; the redelivered record stops at the inbox
        await svc.wait_until(
            f"SELECT count(*) = 2 FROM saga_timeline WHERE saga_id = '{saga_id}'"
            " AND event = 'DisbursementCompleted'")
        # every reply, the redelivered records included, has been read and committed, and
        # everything loans wrote in answer is on Kafka and read
        await consumed_everything(svc)
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert len(sent.matching("DisburseLoan", saga_id=saga_id)) == 1
            assert len(sent.matching("LoanDisbursed", loan_id=loan["id"])) == 1
            assert sent.matching("LoanRejected", loan_id=loan["id"]) == []
        body = await svc.get(loan["id"])
        assert body["status"] == "active" and body["outstanding"]["principal"] == "1200.00"
        saga = (await svc.client.get(f"/v1/sagas/{saga_id}", headers=svc.operator)).json()
        assert saga["state"] == "completed"
        ignored = [t for t in saga["timeline"] if "ignored" in t["detail"]]
        # the second CreditReserved, the late CreditRejected and the second completion
        assert len(ignored) == 3
