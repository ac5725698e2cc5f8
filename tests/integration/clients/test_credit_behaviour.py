"""Credit policy that reads behaviour, over real Kafka: the loans service's arrears,
cures, write-offs and closed cycles (published on the prefixed ``loans.events``) decide
whether a client gets new credit and what its limit becomes."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from shared.auth import ROLE_SCOPES
from shared.contracts.clients import ReserveCredit
from shared.contracts.loans import (
    LoanArrearsCured,
    LoanClosed,
    LoanDisbursed,
    LoanInArrears,
    LoanWrittenOff,
)
from shared.envelope import Envelope
from tests.identity import mint_token
from tests.infra import Infra
from tests.integration.clients.conftest import EVENTS, Service, new_partner
from tests.kafka_facts import TopicReader, until

pytestmark = pytest.mark.integration
D = Decimal
DAY = dt.date(2026, 3, 10)


def op(sub: str | None = None, office_path: str | None = None) -> dict[str, str]:
    tok = mint_token(sub=sub or f"op-{uuid.uuid4().hex[:6]}", scopes=ROLE_SCOPES["operator"],
                     office_id=office_path.rsplit("/", 1)[-1] if office_path else None,
                     office_path=office_path)
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
async def replies(infra: Infra) -> AsyncIterator[TopicReader]:
    async with TopicReader(infra.kafka_bootstrap, [EVENTS]) as reader:
        yield reader


def reserve(client_id: str, amount: str = "1000.00") -> ReserveCredit:
    rid = f"saga-{uuid.uuid4().hex[:10]}"
    return ReserveCredit(client_id=client_id, reservation_id=rid, saga_id=rid,
                         loan_id=f"loan-{rid}", amount=D(amount))


async def ask(svc: Service, replies: TopicReader, client_id: str, amount: str = "1000.00"
              ) -> tuple[str, str | None, ReserveCredit]:
    """ReserveCredit for the client; the reply's type and refusal reason."""
    cmd = reserve(client_id, amount)
    await svc.send(cmd, key=client_id)
    [reply] = await replies.wait_for(key=client_id, reservation_id=cmd.reservation_id,
                                     timeout_s=60)
    return reply.type or "", reply.payload.get("reason"), cmd


async def handled(svc: Service, *envs: Envelope) -> None:
    """Barrier: every one of these messages went through the inbox."""
    ids = [e.event_id for e in envs]

    async def done() -> bool:
        rows = await svc.rows("SELECT event_id FROM inbox WHERE event_id = ANY($1)", ids)
        return len(rows) == len(ids)
    await until(done, f"{len(ids)} loan event(s) handled", timeout_s=60)


def late(loan_id: str, client_id: str, date: dt.date, days: int) -> LoanInArrears:
    return LoanInArrears(loan_id=loan_id, client_id=client_id, business_date=date,
                         days_in_arrears=days, amount_overdue=D("350.00"), bucket="1-30")


def cure(loan_id: str, client_id: str, date: dt.date) -> LoanArrearsCured:
    return LoanArrearsCured(loan_id=loan_id, client_id=client_id, business_date=date)


async def test_a_client_in_arrears_is_refused_until_cured(
        svc: Service, replies: TopicReader) -> None:
    client = await svc.verified_client(new_partner())
    cid, loan = client["id"], f"loan-{uuid.uuid4().hex[:8]}"
    assert (await ask(svc, replies, cid))[:2] == ("CreditReserved", None)

    arrears = await svc.send(late(loan, cid, DAY, 4), key=loan)
    await handled(svc, arrears)
    credit = await svc.credit(cid)
    assert [(a["loan_id"], a["days_in_arrears"], a["as_of"])
            for a in credit["loans_in_arrears"]] == [(loan, 4, "2026-03-10")]
    assert (await ask(svc, replies, cid))[:2] == ("CreditRejected", "client_in_arrears")

    # Still late the next business day, then the borrower catches up.
    worse = await svc.send(late(loan, cid, DAY + dt.timedelta(days=1), 5), key=loan)
    cured = await svc.send(cure(loan, cid, DAY + dt.timedelta(days=2)), key=loan)
    await handled(svc, worse, cured)
    assert (await svc.credit(cid))["loans_in_arrears"] == []
    assert (await ask(svc, replies, cid))[:2] == ("CreditReserved", None)

    # The arrears fact redelivered (same message: the inbox drops it) and replayed from
    # the dead letters after the cure (older business date: it changes nothing).
    await svc.producer.send_and_wait(
        f"{EVENTS.removesuffix('clients.events')}loans.events", value=arrears.to_bytes(),
        key=loan.encode(), headers=[("type", b"LoanInArrears")])
    replayed = await svc.send(late(loan, cid, DAY, 4), key=loan)
    await handled(svc, replayed)
    assert (await svc.credit(cid))["loans_in_arrears"] == []
    assert (await ask(svc, replies, cid))[:2] == ("CreditReserved", None)


async def test_a_cure_before_its_arrears_leaves_the_client_free(
        svc: Service, replies: TopicReader) -> None:
    client = await svc.verified_client(new_partner())
    cid, loan = client["id"], f"loan-{uuid.uuid4().hex[:8]}"
    first = await svc.send(cure(loan, cid, DAY + dt.timedelta(days=1)), key=loan)
    then = await svc.send(late(loan, cid, DAY, 2), key=loan)
    await handled(svc, first, then)
    assert (await svc.credit(cid))["loans_in_arrears"] == []
    assert (await ask(svc, replies, cid))[:2] == ("CreditReserved", None)


async def test_a_written_off_loan_holds_credit_until_two_operators_lift_it(
        svc: Service, replies: TopicReader) -> None:
    client = await svc.verified_client(new_partner())
    cid = client["id"]
    kind, _, cmd = await ask(svc, replies, cid, "3000.00")
    assert kind == "CreditReserved"
    today = dt.date(2026, 1, 5)
    loan_events = [
        LoanDisbursed(loan_id=cmd.loan_id, client_id=cid, partner_id="p", saga_id=cmd.saga_id,
                      principal=D("3000.00"), msisdn=client["phone"], disbursed_on=today,
                      installments=3, first_due_date=today + dt.timedelta(days=30),
                      first_due_amount=D("1100.00"), total_repayable=D("3300.00"),
                      fees_at_disbursement=D("0.00")),
        late(cmd.loan_id, cid, DAY, 20),
        LoanWrittenOff(loan_id=cmd.loan_id, client_id=cid, principal_written_off=D("3000.00"),
                       interest_written_off=D("300.00"), fees_written_off=D("0.00"),
                       penalties_written_off=D("0.00"), written_off_by="op-youssef",
                       proposed_by="op-amina", days_in_arrears=181, reason="unreachable"),
    ]
    sent = [await svc.send(e, key=cmd.loan_id) for e in loan_events]
    await handled(svc, *sent)
    credit = await svc.credit(cid)
    assert credit["credit_hold"] is True and credit["exposure"] == "0.00"
    assert credit["loans_in_arrears"] == []          # written off: no longer "in arrears"
    assert [(h["loan_id"], h["status"], h["written_off_by"]) for h in credit["holds"]] == [
        (cmd.loan_id, "active", "op-youssef")]
    assert (await ask(svc, replies, cid))[:2] == ("CreditRejected", "written_off_loan")

    lift = f"/v1/clients/{cid}/credit-hold/lift"
    amina, karim = op("amina"), op("karim")
    # A reason is required; a partner cannot; a branch token outside the client's office
    # does not see it; approving with nothing proposed is a conflict.
    assert (await svc.http.post(lift, json={"reason": ""}, headers=amina)).status_code == 422
    partner_tok = mint_token(sub="agent", scopes=ROLE_SCOPES["partner"],
                             partner_id=client["partner_id"])
    resp = await svc.http.post(lift, json={"reason": "x"},
                               headers={"Authorization": f"Bearer {partner_tok}"})
    assert resp.status_code == 403
    far = op("far-branch", office_path="ho/r-far/b-far")
    assert (await svc.http.post(lift, json={"reason": "x"}, headers=far)).status_code == 404
    assert (await svc.http.post(f"{lift}/approve", headers=karim)).status_code == 409

    proposed = await svc.http.post(lift, json={"reason": "recovered in full, committee"},
                                   headers=amina)
    assert proposed.status_code == 201, proposed.text
    assert proposed.json()["loan_ids"] == [cmd.loan_id]
    assert (await svc.http.post(lift, json={"reason": "again"}, headers=karim)
            ).status_code == 409                   # one pending request per client
    assert (await svc.http.post(f"{lift}/approve", headers=far)).status_code == 404
    # Still held while only one operator has spoken.
    assert (await ask(svc, replies, cid))[:2] == ("CreditRejected", "written_off_loan")

    same = await svc.http.post(f"{lift}/approve", headers=amina)
    assert same.status_code == 403
    assert same.headers["content-type"].startswith("application/problem+json")
    assert same.json()["errors"][0]["field"] == "requested_by"

    approved = await svc.http.post(f"{lift}/approve", headers=karim)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["requested_by"],
            approved.json()["approved_by"]) == ("approved", "amina", "karim")
    credit = await svc.credit(cid)
    assert credit["credit_hold"] is False
    assert [(h["status"], h["lift_id"]) for h in credit["holds"]] == [
        ("lifted", approved.json()["id"])]
    assert (await ask(svc, replies, cid))[:2] == ("CreditReserved", None)

    # A replayed write-off does not hold the client again.
    again = await svc.send(loan_events[-1], key=cmd.loan_id)
    await handled(svc, again)
    assert (await svc.credit(cid))["credit_hold"] is False

    audit = await svc.rows(
        "SELECT subject, route FROM audit_log WHERE path LIKE $1 ORDER BY id",
        f"/v1/clients/{cid}/credit-hold/%")
    assert [(r["subject"], r["route"]) for r in audit] == [
        ("amina", "/v1/clients/{client_id}/credit-hold/lift"),
        ("karim", "/v1/clients/{client_id}/credit-hold/lift/approve")]


async def _close_a_cycle(svc: Service, replies: TopicReader, client: dict[str, Any],
                         worst: int, on: dt.date) -> dict[str, Any]:
    kind, _, cmd = await ask(svc, replies, client["id"], "1000.00")
    assert kind == "CreditReserved"
    disbursed = LoanDisbursed(
        loan_id=cmd.loan_id, client_id=client["id"], partner_id="p", saga_id=cmd.saga_id,
        principal=D("1000.00"), msisdn=client["phone"], disbursed_on=on,
        installments=1, first_due_date=on + dt.timedelta(days=30),
        first_due_amount=D("1100.00"), total_repayable=D("1100.00"),
        fees_at_disbursement=D("0.00"))
    closed = LoanClosed(loan_id=cmd.loan_id, client_id=client["id"], principal=D("1000.00"),
                        closed_on=on + dt.timedelta(days=30 + worst),
                        max_days_in_arrears=worst)
    sent = [await svc.send(disbursed, key=cmd.loan_id), await svc.send(closed, key=cmd.loan_id)]
    await handled(svc, *sent)
    credit = await svc.credit(client["id"])
    assert credit["last_cycle"]["loan_id"] == cmd.loan_id
    return credit


@pytest.mark.parametrize(("worst", "move", "limit", "cycle"), [
    (3, "grow", "10000.00", 3),      # cycle 2 (7 500) → 3: 5 000 + 2 x 2 500
    (20, "keep", "7500.00", 2),
    (60, "shrink", "5000.00", 1),
])
async def test_the_worst_days_in_arrears_of_a_cycle_decide_the_limit(
        svc: Service, replies: TopicReader, worst: int, move: str, limit: str, cycle: int
) -> None:
    client = await svc.verified_client(new_partner())
    first = await _close_a_cycle(svc, replies, client, 0, dt.date(2026, 1, 5))
    assert (first["credit_limit"], first["cycle"]) == ("7500.00", 2)

    credit = await _close_a_cycle(svc, replies, client, worst, dt.date(2026, 3, 2))
    assert (credit["credit_limit"], credit["cycle"]) == (limit, cycle)
    last = credit["last_cycle"]
    assert (last["worst_days_in_arrears"], last["move"], last["previous_limit"],
            last["credit_limit"], last["previous_cycle"]) == (
        worst, move, "7500.00", limit, 2)
    [_, changed] = await replies.wait_for("CreditLimitChanged", key=client["id"], count=2)
    assert (changed.payload["credit_limit"], changed.payload["previous_limit"],
            changed.payload["cycle"]) == (limit, "7500.00", cycle)
