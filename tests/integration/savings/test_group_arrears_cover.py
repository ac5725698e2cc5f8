"""A group's compulsory savings cover a member's arrears, by maker-checker (issue 16), on
real PostgreSQL and Kafka with loans and payments played by the test: loans' events
(``GroupLoanActive``, ``InstallmentOverdue``, ``RepaymentApplied``) are published on the
rig's prefixed ``loans.events``; what savings asks payments to book is read from its
``savings.events`` (``StandingInstructionPayment``, the standing instructions' path)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.clock import today
from shared.contracts import clients, loans
from tests.identity import mint_token
from tests.integration.savings.conftest import OPERATOR_SCOPES, Rig, new_msisdn
from tests.kafka_facts import until


def field(resp: Any) -> str:
    """The field a problem+json answer names."""
    return str(resp.json()["errors"][0]["field"])

MAKER = "maker-amina"
CHECKER = "checker-youssef"


@dataclass
class Group:
    id: str
    group_loan_id: str
    clients: list[str]
    loans: list[str]
    accounts: list[str]


async def registered(rig: Rig, office_path: str) -> str:
    client_id = f"client-{uuid.uuid4().hex[:10]}"
    await rig.send(clients.ClientRegistered(
        client_id=client_id, partner_id="partner-a", full_name="Fatima Test",
        phone=new_msisdn(), language="fr", sms_consent=True,
        office_id=office_path.rsplit("/", 1)[-1], office_path=office_path), key=client_id)
    await rig.send(clients.ClientKycVerified(client_id=client_id, verified_by="checker"),
                   key=client_id)

    async def known() -> bool:
        async with rig.pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT kyc_status = 'verified' FROM client_projection WHERE client_id = $1",
                client_id) is True
    await until(known, f"savings knows {client_id}")
    return client_id


async def group_with_savings(rig: Rig, balances: list[str], *,
                             office_path: str = "ho/r-souss/b-tiznit",
                             cover_arrears: bool = False) -> Group:
    """A live group loan (one loan per member, as loans announces it, with the group's
    ``cover_arrears`` rule) whose members hold ``balances`` in compulsory savings linked
    to their loans."""
    product = await rig.product(kind="compulsory", loan_product_id="lp-group",
                                amount_per_installment="10.00")
    members = [await registered(rig, office_path) for _ in balances]
    loan_ids = [str(uuid.uuid4()) for _ in balances]
    group = Group(f"g-{uuid.uuid4().hex[:8]}", str(uuid.uuid4()), members, loan_ids, [])
    for client_id, loan_id, balance in zip(members, loan_ids, balances, strict=True):
        resp = await rig.api.post("/v1/savings/accounts", headers=rig.keyed(), json={
            "client_id": client_id, "product_id": product, "opening_deposit": "0.00",
            "linked_loan_id": loan_id})
        assert resp.status_code == 201, resp.text
        group.accounts.append(resp.json()["id"])
        if Decimal(balance) > 0:
            assert (await rig.deposit(resp.json()["id"], balance)).status_code == 201
    await rig.send(loans.GroupLoanActive(
        group_id=group.id, group_loan_id=group.group_loan_id, member_ids=members,
        loan_ids=loan_ids, saga_id=str(uuid.uuid4()), total_principal=Decimal("3000.00"),
        cover_arrears=cover_arrears), key=group.id)
    await rig.consumed()
    return group


async def overdue(rig: Rig, group: Group, member: int, owed: str, installment: int = 1
                  ) -> None:
    """Loans' close of business: the member's installment is a day late and owes ``owed``."""
    await rig.send(loans.InstallmentOverdue(
        loan_id=group.loans[member], client_id=group.clients[member],
        business_date=today(), installment=installment,
        due_date=today() - dt.timedelta(days=1), amount_due=Decimal(owed), days_late=1),
        key=group.loans[member])
    await rig.consumed()


def who(sub: str, office_path: str | None = None) -> dict[str, str]:
    token = mint_token(sub=sub, scopes=OPERATOR_SCOPES, office_path=office_path,
                       office_id=None if office_path is None else office_path.rsplit("/")[-1])
    return {"Authorization": f"Bearer {token}"}


async def ask(rig: Rig, group: Group, member: int, *, key: str | None = None,
              sub: str = MAKER, headers: dict[str, str] | None = None) -> Any:
    return await rig.api.post(
        f"/v1/savings/groups/{group.id}/arrears-cover-requests",
        json={"loan_id": group.loans[member]},
        headers={**(headers or who(sub)), "Idempotency-Key": key or uuid.uuid4().hex})


async def decide(rig: Rig, request_id: str, *, sub: str = CHECKER, key: str | None = None
                 ) -> Any:
    return await rig.api.post(f"/v1/savings/arrears-cover-requests/{request_id}/approve",
                              headers={**who(sub), "Idempotency-Key": key or uuid.uuid4().hex})


async def balances(rig: Rig, group: Group) -> list[str]:
    return [(await rig.get(a))["ledger_balance"] for a in group.accounts]


async def test_the_members_own_savings_cover_its_arrears_once_a_checker_approves(
        rig: Rig) -> None:
    group = await group_with_savings(rig, ["500.00", "800.00"])
    await overdue(rig, group, 0, "120.50")

    key = uuid.uuid4().hex
    first = await ask(rig, group, 0, key=key)
    assert first.status_code == 201, first.text
    asked = first.json()
    assert asked["status"] == "pending" and asked["amount"] == "120.50"
    assert [(s["account_id"], s["amount"], s["own"]) for s in asked["sources"]] == [
        (group.accounts[0], "120.50", True)]
    assert [i["installment"] for i in asked["installments"]] == [1]
    assert asked["other_members_allowed"] is False
    again = await ask(rig, group, 0, key=key)           # a retry: the first answer
    assert again.status_code == 201 and again.json() == asked
    other = await ask(rig, group, 0)                    # another request for the same loan
    assert other.status_code == 409 and field(other) == "loan_id"

    pending = await rig.api.get("/v1/savings/arrears-cover-requests", headers=who(CHECKER),
                                params={"status": "pending", "group_id": group.id})
    assert [r["id"] for r in pending.json()["items"]] == [asked["id"]]

    # maker-checker: the maker cannot approve; nothing moves
    own = await decide(rig, asked["id"], sub=MAKER)
    assert own.status_code == 403, own.text
    assert own.headers["content-type"].startswith("application/problem+json")
    assert await balances(rig, group) == ["500.00", "800.00"]

    key = uuid.uuid4().hex
    approved = await decide(rig, asked["id"], key=key)
    assert approved.status_code == 200, approved.text
    done = approved.json()
    assert done["status"] == "approved" and done["decided_by"] == CHECKER
    assert done["paid"] == "120.50"
    retried = await decide(rig, asked["id"], key=key)   # a retry: the first answer
    assert retried.status_code == 200 and retried.json() == done
    twice = await decide(rig, asked["id"])              # approved again, another key
    assert twice.status_code == 409 and field(twice) == "status"

    # one repayment for the loan, through payments as a standing instruction's
    (paid,) = await rig.reader.wait_for("StandingInstructionPayment",
                                        loan_id=group.loans[0])
    assert paid.key == group.accounts[0]
    assert paid.payload["amount"] == "120.50" and paid.payload["installment"] == 1
    assert paid.payload["payment_id"] == done["sources"][0]["payment_id"]
    await rig.consumed()
    assert len(rig.reader.matching("StandingInstructionPayment", loan_id=group.loans[0])) == 1
    assert await balances(rig, group) == ["379.50", "800.00"]
    line = (await rig.statement(group.accounts[0]))["lines"][-1]
    assert (line["kind"], line["amount"]) == ("loan_repayment", "-120.50")

    # who asked and who approved, in the audit log
    written: set[tuple[str, str]] = set()
    for sub in (MAKER, CHECKER):
        audit = await rig.api.get("/v1/audit", params={"subject": sub, "limit": 500},
                                  headers=rig.auth(sub="auditor",
                                                   scopes=("audit:read", "tenant:all")))
        assert audit.status_code == 200, audit.text
        written |= {(e["subject"], e["path"]) for e in audit.json()["items"]}
    assert (MAKER, f"/v1/savings/groups/{group.id}/arrears-cover-requests") in written
    assert (CHECKER, f"/v1/savings/arrears-cover-requests/{asked['id']}/approve") in written

    # compulsory savings stay blocked for anything else
    refused = await rig.withdraw(group.accounts[0], "10.00")
    assert refused.status_code == 409 and field(refused) == "account_id"

    # loans applied it: nothing is overdue any more
    await rig.send(loans.RepaymentApplied(
        loan_id=group.loans[0], client_id=group.clients[0], payment_id=paid.payload[
            "payment_id"], amount=Decimal("120.50"),
        allocation=[loans.AllocationLine(installment=1, component="principal",
                                         amount=Decimal("120.50"))],
        principal_paid=Decimal("120.50"), interest_paid=Decimal(0), fees_paid=Decimal(0),
        penalties_paid=Decimal(0), outstanding_principal=Decimal("879.50"),
        outstanding_total=Decimal("900.00"), next_due_date=None, next_due_amount=None,
        closes_loan=False), key=group.loans[0])
    await rig.consumed()
    nothing = await ask(rig, group, 0)
    assert nothing.status_code == 409 and field(nothing) == "loan_id"
    assert "overdue" in nothing.json()["detail"]


async def test_savings_that_do_not_cover_the_arrears_are_a_409_and_nothing_moves(
        rig: Rig) -> None:
    group = await group_with_savings(rig, ["50.00", "1000.00"])
    nothing = await ask(rig, group, 0)                  # nothing overdue yet
    assert nothing.status_code == 409 and field(nothing) == "loan_id"

    await overdue(rig, group, 0, "120.00")
    short = await ask(rig, group, 0)
    assert short.status_code == 409, short.text
    problem = short.json()
    assert short.headers["content-type"].startswith("application/problem+json")
    assert problem["errors"][0]["field"] == "loan_id"
    assert (problem["overdue"], problem["available"]) == ("120.00", "50.00")
    listed = await rig.api.get("/v1/savings/arrears-cover-requests", headers=who(CHECKER),
                               params={"group_id": group.id})
    assert listed.json()["items"] == []
    assert await balances(rig, group) == ["50.00", "1000.00"]

    # enough when asked, not when approved (a legal block since): 409, nothing moves
    await rig.deposit(group.accounts[0], "100.00")
    asked = await ask(rig, group, 0)
    assert asked.status_code == 201, asked.text
    blocked = await rig.api.post(f"/v1/savings/accounts/{group.accounts[0]}/block",
                                 headers=rig.auth(), json={"reason": "saisie"})
    assert blocked.status_code == 200, blocked.text
    refused = await decide(rig, asked.json()["id"])
    assert refused.status_code == 409 and field(refused) == "loan_id"
    assert await balances(rig, group) == ["150.00", "1000.00"]
    again = await rig.api.get(f"/v1/savings/arrears-cover-requests/{asked.json()['id']}",
                              headers=who(CHECKER))
    assert again.json()["status"] == "pending"
    await rig.consumed()
    assert rig.reader.matching("StandingInstructionPayment", loan_id=group.loans[0]) == []

    rejected = await rig.api.post(
        f"/v1/savings/arrears-cover-requests/{asked.json()['id']}/reject",
        headers=who(CHECKER), json={"reason": "the account is under a legal seizure"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


async def test_other_members_savings_cover_only_under_the_groups_rule(rig: Rig) -> None:
    without = await group_with_savings(rig, ["50.00", "1000.00", "0.00"])
    await overdue(rig, without, 0, "120.00")
    own_only = await ask(rig, without, 0)
    assert own_only.status_code == 409, own_only.text

    # the group's rule, as loans announces it with its group loan (cover_arrears)
    group = await group_with_savings(rig, ["50.00", "1000.00", "0.00"], cover_arrears=True)
    await overdue(rig, group, 2, "30.00")
    await overdue(rig, group, 0, "120.00")
    asked = await ask(rig, group, 0)
    assert asked.status_code == 201, asked.text
    assert [(s["account_id"], s["amount"], s["own"]) for s in asked.json()["sources"]] == [
        (group.accounts[0], "50.00", True), (group.accounts[1], "70.00", False)]
    done = await decide(rig, asked.json()["id"])
    assert done.status_code == 200, done.text
    paid = await rig.reader.wait_for("StandingInstructionPayment", count=2,
                                     loan_id=group.loans[0])
    assert sorted((p.key, p.payload["amount"]) for p in paid) == sorted(
        [(group.accounts[0], "50.00"), (group.accounts[1], "70.00")])
    assert await balances(rig, group) == ["0.00", "930.00", "0.00"]


async def test_a_token_of_another_office_sees_nothing_of_the_group(rig: Rig) -> None:
    group = await group_with_savings(rig, ["300.00", "0.00"], office_path="ho/r-souss/b-taroudant")
    await overdue(rig, group, 0, "40.00")
    elsewhere = who("officer-m", "ho/r-tensift/b-marrakech")
    resp = await ask(rig, group, 0, headers=elsewhere)
    assert resp.status_code == 404 and field(resp) == "group_id"
    mine = await ask(rig, group, 0, headers=who("officer-t", "ho/r-souss"))
    assert mine.status_code == 201, mine.text
    path = f"/v1/savings/arrears-cover-requests/{mine.json()['id']}"
    assert (await rig.api.get(path, headers=elsewhere)).status_code == 404
    approve = await rig.api.post(path + "/approve",
                                 headers={**elsewhere, "Idempotency-Key": uuid.uuid4().hex})
    assert approve.status_code == 404
    listed = await rig.api.get("/v1/savings/arrears-cover-requests", headers=elsewhere,
                               params={"group_id": group.id})
    assert listed.json()["items"] == []
    assert (await rig.get(group.accounts[0]))["ledger_balance"] == "300.00"
