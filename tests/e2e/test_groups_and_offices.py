"""Issue 15 end to end: solidarity-group lending with joint liability, and how the
institution is organised — offices, loan officers, access by office, collection sheets and
a branch's day-end cash.

Everything goes through the public APIs and the simulators and waits for facts
(``eventually``). Group schedules are weekly; the first meeting (due date) is a week after
the payout. The scenario that needs arrears closes business past a due date and runs
last: close of business only moves the package's one business date forward.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.bank import (
    Bank,
    Borrower,
    eventually,
    next_national_id,
    next_phone,
    office_bearer,
)

pytestmark = pytest.mark.e2e
D = Decimal
ZERO = D("0.00")


def slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


# -- building blocks ------------------------------------------------------------------------
async def enrol(bank: Bank, partner: str, *, office_id: str | None = None,
                officer_id: str | None = None) -> Borrower:
    """A borrower onboarded by an operator (into an office, with its officer when given)
    and verified by another."""
    body: dict[str, Any] = {
        "full_name": f"Aicha Ait {uuid.uuid4().hex[:5]}",
        "national_id": next_national_id(), "phone": next_phone(),
        "date_of_birth": "1984-06-02",
        "language": "fr", "sms_consent": True, "partner_id": partner,
    }
    if office_id is not None:
        body["office_id"] = office_id
    if officer_id is not None:
        body["officer_id"] = officer_id
    client = await bank.call("POST", "clients", "/v1/clients", expect=201, json=body,
                             headers=bank.maker)
    await bank.call("POST", "clients", f"/v1/clients/{client['id']}/kyc",
                    headers=bank.checker, json={"decision": "verified"})
    return Borrower(client["id"], partner, client["phone"], "fr")


async def form_group(bank: Bank, members: list[Borrower], *,
                     officer_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"Tiwizi {uuid.uuid4().hex[:5]}",
                            "leader_id": members[0].client_id,
                            "member_ids": [m.client_id for m in members]}
    if officer_id is not None:
        body["officer_id"] = officer_id
    group: dict[str, Any] = await bank.call("POST", "clients", "/v1/groups", expect=201,
                                            json=body, headers=bank.maker)
    return group


async def weekly_product(bank: Bank) -> str:
    return await bank.product(frequency="weekly", annual_rate="0.24", max_term=12)


async def apply_group(bank: Bank, group_id: str, product: str,
                      shares: list[tuple[Borrower, str]], term: int = 4) -> dict[str, Any]:
    body = {"group_id": group_id, "product_id": product, "term": term,
            "members": [{"client_id": who.client_id, "principal": principal}
                        for who, principal in shares]}

    async def try_apply() -> dict[str, Any] | None:
        resp = await bank.request("POST", "loans", "/v1/group-loans", json=body,
                                  headers=bank.maker)
        if resp.status_code == 201:
            out: dict[str, Any] = resp.json()
            return out
        # Loans learns of the group and its members from clients.events a moment later.
        assert resp.status_code == 422 and ("group" in resp.text or "client" in resp.text), \
            resp.text
        return None

    return await eventually(try_apply, timeout_s=30, what="group application accepted")


async def group_loan(bank: Bank, group_loan_id: str,
                     headers: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = await bank.call("GET", "loans", f"/v1/group-loans/{group_loan_id}",
                                           headers=headers or bank.maker)
    return body


async def wait_group(bank: Bank, group_loan_id: str, check: Any, what: str,
                     timeout_s: float = 90.0) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        gl = await group_loan(bank, group_loan_id)
        return gl if check(gl) else None

    return await eventually(probe, timeout_s=timeout_s, what=f"group loan {what}")


async def disbursed_group(bank: Bank, group_id: str, product: str,
                          shares: list[tuple[Borrower, str]]) -> dict[str, Any]:
    gl = await apply_group(bank, group_id, product, shares)
    await bank.call("POST", "loans", f"/v1/group-loans/{gl['id']}/approve",
                    headers=bank.checker, json={})
    return await wait_group(bank, gl["id"], lambda g: g["status"] == "active", "active")


async def schedule(bank: Bank, loan_id: str) -> dict[str, Any]:
    body: dict[str, Any] = await bank.call("GET", "loans", f"/v1/loans/{loan_id}/schedule",
                                           headers=bank.maker)
    return body


async def group_sagas(bank: Bank, group_loan_id: str) -> list[dict[str, Any]]:
    body = await bank.call("GET", "loans", "/v1/sagas", headers=bank.maker,
                           params={"loan_id": group_loan_id})
    items: list[dict[str, Any]] = body["items"]
    return items


async def exposure_is(bank: Bank, who: Borrower, amount: Decimal) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        credit = await bank.credit(who.client_id)
        return credit if D(credit["exposure"]) == amount else None

    return await eventually(probe, what=f"exposure of {who.client_id} at {amount}")


async def principal_down_to(bank: Bank, loan_id: str, remaining: Decimal) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        loan = await bank.loan(loan_id)
        return loan if D(loan["outstanding"]["principal"]) == remaining else None

    return await eventually(probe, what=f"{loan_id} principal down to {remaining}")


# -- 1. a group of five, one saga ---------------------------------------------------------
async def test_group_of_five_is_disbursed_by_one_saga(bank: Bank) -> None:
    partner = slug("partner")
    members = [await bank.onboard(partner=partner) for _ in range(5)]
    group = await form_group(bank, members)
    product = await weekly_product(bank)
    principals = ["1000.00", "1200.00", "1500.00", "800.00", "2000.00"]
    shares = list(zip(members, principals, strict=True))
    gl = await apply_group(bank, group["id"], product, shares)
    assert gl["status"] == "submitted" and len(gl["members"]) == 5, gl
    assert D(gl["total_principal"]) == sum((D(p) for p in principals), ZERO)
    # Maker-checker: the operator who submitted it cannot approve it.
    await bank.call("POST", "loans", f"/v1/group-loans/{gl['id']}/approve",
                    headers=bank.maker, expect=403, json={})
    approved = await bank.call("POST", "loans", f"/v1/group-loans/{gl['id']}/approve",
                               headers=bank.checker, json={})
    assert approved["saga_id"], approved

    active = await wait_group(bank, gl["id"], lambda g: g["status"] == "active", "active")
    assert active["saga"]["state"] == "completed" and active["saga"]["to_recover"] == []
    by_client = {m["client_id"]: m for m in active["members"]}
    for who, principal in shares:
        member = by_client[who.client_id]
        assert member["status"] == "active" and D(member["principal"]) == D(principal)
        assert (await bank.loan(member["loan_id"]))["status"] == "active"
        # five payouts at the provider, each of the member's own principal
        wallet = await bank.wallet(who.phone)
        assert D(wallet["payouts"]) == D(principal), (who.client_id, wallet)
        await exposure_is(bank, who, D(principal))

    # One saga for the whole group, none per member.
    [saga] = await group_sagas(bank, gl["id"])
    assert saga["type"] == "group_disbursement" and saga["state"] == "completed", saga
    assert saga["id"] == approved["saga_id"]
    for member in active["members"]:
        assert await group_sagas(bank, member["loan_id"]) == []
    await bank.check_invariants([m["loan_id"] for m in active["members"]])


# -- 2. one member's payee is refused; one member's payout fails after validation ----------
@dataclass
class FailedGroup:
    members: list[Borrower]
    failing: Borrower
    ended: dict[str, Any]

    @property
    def others(self) -> list[Borrower]:
        return [who for who in self.members if who is not self.failing]

    def loan_of(self, who: Borrower) -> str:
        return str(next(m["loan_id"] for m in self.ended["members"]
                        if m["client_id"] == who.client_id))

    @property
    def loan_ids(self) -> list[str]:
        return [self.loan_of(who) for who in self.members]


async def group_with_failing_member(bank: Bank, **wallet: Any) -> FailedGroup:
    """A group of five whose third member's wallet behaves as ``wallet`` says at the
    provider, approved; once its saga has ended."""
    partner = slug("partner")
    members = [await bank.onboard(partner=partner) for _ in range(5)]
    failing = members[2]
    await bank.sim_config(msisdn=failing.phone, **wallet)
    try:
        group = await form_group(bank, members)
        product = await weekly_product(bank)
        gl = await apply_group(bank, group["id"], product, [(who, "1000.00") for who in members])
        await bank.call("POST", "loans", f"/v1/group-loans/{gl['id']}/approve",
                        headers=bank.checker, json={})
        ended = await wait_group(
            bank, gl["id"], lambda g: g["saga"] is not None and g["saga"]["state"] in (
                "failed", "compensated"), "saga ended", timeout_s=120)
    finally:
        await bank.sim_config(msisdn=failing.phone, reset=True)
    return FailedGroup(members, failing, ended)


@pytest.fixture(scope="module")
async def failed_group(bank: Bank) -> FailedGroup:
    """The third member's wallet refuses every payout: the provider says so when asked
    (its account status is ``unavailable``)."""
    return await group_with_failing_member(bank, failure_rate=1.0)


async def test_failed_member_payout_fails_the_whole_group_visibly(
        bank: Bank, failed_group: FailedGroup) -> None:
    # Every member's payee is validated with the provider before any payout: the refusing
    # wallet is refused there, so nobody is paid and every member is compensated — credit
    # released, nothing in the ledger, no member active, the saga ``compensated``, an SMS
    # to each member as for any failed disbursement.
    ended, failing = failed_group.ended, failed_group.failing
    assert ended["status"] == "failed", ended
    saga = ended["saga"]
    assert saga["state"] == "compensated" and saga["to_recover"] == [], saga
    assert failing.client_id in saga["reason"] and "payee refused" in saga["reason"], saga
    [listed] = await group_sagas(bank, ended["id"])
    assert listed["type"] == "group_disbursement" and listed["state"] == "compensated", listed
    assert listed["id"] == saga["id"]

    statuses = {m["client_id"]: (await bank.loan(m["loan_id"]))["status"]
                for m in ended["members"]}
    assert set(statuses.values()) == {"disbursement_failed"}, statuses
    for who in failed_group.members:
        await exposure_is(bank, who, ZERO)                          # credit released
        assert D((await bank.wallet(who.phone))["payouts"]) == ZERO  # no payout made
        await bank.wait_sms(who.client_id, "disbursement_failed")
        books = await bank.call("GET", "payments",
                                f"/v1/loans/{failed_group.loan_of(who)}/portfolio-balance",
                                headers=bank.maker)
        assert not books["exists"] or D(books["portfolio_balance"]) == ZERO, books
    await bank.check_invariants(failed_group.loan_ids)


@pytest.fixture(scope="module")
async def paid_then_failed_group(bank: Bank) -> FailedGroup:
    """The third member's wallet passes the provider's account-status lookup, then
    refuses the payout itself: the others were already paid."""
    return await group_with_failing_member(bank, failure_rate=1.0,
                                           account_status="available")


async def test_members_paid_in_a_failed_group_keep_books_and_loans_equal(
        bank: Bank, paid_then_failed_group: FailedGroup) -> None:
    # After validation a payout can still fail. Payouts already made cannot be taken back
    # by us: those members' loans stay ``disbursing`` with their credit reserved, carry
    # the paid-out principal as outstanding (what payments' portfolio holds), and are
    # flagged in ``payouts_to_recover`` for an operator; the failed member is compensated.
    group, failing = paid_then_failed_group, paid_then_failed_group.failing
    ended = group.ended
    assert ended["status"] == "failed", ended
    saga = ended["saga"]
    assert saga["state"] == "failed", saga
    assert failing.client_id in saga["reason"] and "not reversed" in saga["reason"], saga
    assert sorted(saga["to_recover"]) == sorted(group.loan_of(w) for w in group.others), saga

    statuses = {m["client_id"]: (await bank.loan(m["loan_id"]))["status"]
                for m in ended["members"]}
    assert "active" not in statuses.values(), statuses
    assert statuses[failing.client_id] == "disbursement_failed", statuses
    await exposure_is(bank, failing, ZERO)
    assert D((await bank.wallet(failing.phone))["payouts"]) == ZERO
    for who in group.others:
        loan = await bank.loan(group.loan_of(who))
        assert loan["status"] == "disbursing", loan
        assert D(loan["outstanding"]["principal"]) == D("1000.00"), loan
        assert D((await bank.wallet(who.phone))["payouts"]) == D("1000.00")
        credit = await bank.credit(who.client_id)
        assert D(credit["reserved"]) == D("1000.00"), credit
    await bank.check_invariants(group.loan_ids)


# -- 3. a group repayment split by what each member owes ---------------------------------------
async def test_group_repayment_on_the_meeting_sheet_is_split_by_what_each_member_owed(
        bank: Bank) -> None:
    partner = slug("partner")
    members = [await bank.onboard(partner=partner) for _ in range(3)]
    group = await form_group(bank, members)
    product = await weekly_product(bank)
    shares = list(zip(members, ["1000.00", "1500.00", "2000.00"], strict=True))
    active = await disbursed_group(bank, group["id"], product, shares)
    firsts = {m["loan_id"]: (await schedule(bank, m["loan_id"]))["installments"][0]
              for m in active["members"]}
    meeting = min(date.fromisoformat(i["due_date"]) for i in firsts.values())
    owed = {loan_id: D(i["total"]) for loan_id, i in firsts.items()
            if date.fromisoformat(i["due_date"]) == meeting}
    assert len(owed) == 3, firsts

    # One collection for the whole group at its meeting: what the group hands over.
    sheet = await bank.call("GET", "loans", "/v1/collection-sheets", headers=bank.maker,
                            params={"group_id": group["id"], "date": meeting.isoformat()})
    assert D(sheet["totals"]["expected"]) == sum(owed.values(), ZERO), sheet
    [on_sheet] = sheet["groups"]
    assert on_sheet["group_loan_id"] == active["id"], on_sheet
    url = f"/v1/collection-sheets/{sheet['sheet_id']}/collections"
    line = {"lines": [{"loan_id": active["id"], "amount": sheet["totals"]["expected"]}]}
    first = await bank.call("POST", "loans", url, headers={**bank.maker, **key()},
                            expect=201, json=line)
    assert [ln["status"] for ln in first["lines"]] == ["recorded"], first
    # the same collection recorded again (another request): booked once
    again = await bank.call("POST", "loans", url, headers={**bank.maker, **key()},
                            expect=201, json=line)
    assert [ln["status"] for ln in again["lines"]] == ["already_recorded"], again
    assert again["lines"][0]["collection_id"] == first["lines"][0]["collection_id"]
    # a member's own line next to the group's collection would count the cash twice
    member = next(iter(owed))
    await bank.call("POST", "loans", url, headers={**bank.maker, **key()}, expect=409,
                    json={"lines": [{"loan_id": member, "amount": "1.00"}]})
    shown = await bank.call("GET", "loans", f"/v1/collection-sheets/{sheet['sheet_id']}",
                            headers=bank.maker)
    assert D(shown["groups"][0]["collected"]) == D(sheet["totals"]["expected"]), shown
    for loan_id, share in owed.items():
        principal = D(firsts[loan_id]["principal"])
        before = D(next(m for m in active["members"] if m["loan_id"] == loan_id)["principal"])
        after = await principal_down_to(bank, loan_id, before - principal)
        assert D(after["outstanding"]["total"]) + share == sum(
            (D(i["total"]) for i in (await schedule(bank, loan_id))["installments"]), ZERO)
    await bank.check_invariants(list(owed))


# -- 5. offices, officers and access by office ----------------------------------------------
@dataclass
class Branch:
    id: str
    path: str
    officer: str
    spare_officer: str
    members: list[Borrower]
    group: dict[str, Any]
    group_loan: dict[str, Any]

    @property
    def loan_ids(self) -> set[str]:
        return {m["loan_id"] for m in self.group_loan["members"]}

    @property
    def client_ids(self) -> set[str]:
        return {m.client_id for m in self.members}

    def token(self, officer: str | None = None) -> dict[str, str]:
        return office_bearer(self.id, self.path, sub=officer or self.officer)


@dataclass
class Org:
    region: str
    region_path: str
    a: Branch
    b: Branch
    product: str


async def open_office(bank: Bank, kind: str, parent: str) -> dict[str, Any]:
    office: dict[str, Any] = await bank.call(
        "POST", "clients", "/v1/offices", expect=201, headers=bank.maker,
        json={"id": slug(kind[0]), "kind": kind, "name": f"{kind} {uuid.uuid4().hex[:4]}",
              "parent_id": parent})
    return office


async def hire(bank: Bank, office_id: str) -> str:
    staff = await bank.call("POST", "clients", "/v1/staff", expect=201, headers=bank.maker,
                            json={"id": slug("lo"), "full_name": f"Officer {uuid.uuid4().hex[:4]}",
                                  "role": "loan_officer", "office_id": office_id})
    return str(staff["id"])


async def open_branch(bank: Bank, region: str, product: str) -> Branch:
    office = await open_office(bank, "branch", region)
    officer, spare = await hire(bank, office["id"]), await hire(bank, office["id"])
    partner = slug("partner")
    members = [await enrol(bank, partner, office_id=office["id"], officer_id=officer)
               for _ in range(3)]
    group = await form_group(bank, members, officer_id=officer)
    assert group["office_id"] == office["id"] and group["officer_id"] == officer, group
    gl = await disbursed_group(bank, group["id"], product,
                               [(m, "1000.00") for m in members])
    return Branch(office["id"], office["path"], officer, spare, members, group, gl)


@pytest.fixture(scope="module")
async def org(bank: Bank) -> Org:
    """A region with two branches; in each, two loan officers, three clients of the first
    officer in one group, and the group's loan disbursed."""
    region = await open_office(bank, "region", "ho")
    assert region["path"] == f"ho/{region['id']}"
    product = await weekly_product(bank)
    a, b = await asyncio.gather(open_branch(bank, region["id"], product),
                                open_branch(bank, region["id"], product))
    assert a.path == f"ho/{region['id']}/{a.id}"
    return Org(region["id"], region["path"], a, b, product)


async def first_meeting(bank: Bank, branch: Branch) -> date:
    days = {(await schedule(bank, loan_id))["installments"][0]["due_date"]
            for loan_id in branch.loan_ids}
    assert len(days) == 1, days
    return date.fromisoformat(days.pop())


def sheet_loans(sheet: dict[str, Any]) -> set[str]:
    return {m["loan_id"] for g in sheet["groups"] for m in g["members"]}


async def test_an_officer_sees_only_its_branch(bank: Bank, org: Org) -> None:
    a, b = org.a, org.b
    mine = a.token()
    other_client = b.members[0].client_id
    other_loan = sorted(b.loan_ids)[0]
    meeting = await first_meeting(bank, a)

    # clients: its own branch's, nothing of the other's (404 as another partner's)
    got = await bank.call("GET", "clients", f"/v1/clients/{a.members[0].client_id}",
                          headers=mine)
    assert got["office_id"] == a.id and got["officer_id"] == a.officer
    for path in (f"/v1/clients/{other_client}", f"/v1/clients/{other_client}/credit",
                 f"/v1/groups/{b.group['id']}", f"/v1/offices/{b.id}", f"/v1/staff/{b.officer}"):
        await bank.call("GET", "clients", path, headers=mine, expect=404)
    await bank.call("PATCH", "clients", f"/v1/clients/{other_client}", headers=mine,
                    expect=404, json={"language": "ar"})
    assert (await bank.call("GET", "clients", f"/v1/clients/{other_client}",
                            headers=bank.maker))["language"] == "fr"
    listed = await bank.call("GET", "clients", "/v1/clients", headers=mine,
                             params={"limit": 200})
    assert {c["id"] for c in listed["items"]} == a.client_ids, listed
    offices = await bank.call("GET", "clients", "/v1/offices", headers=mine)
    assert {o["id"] for o in offices["items"]} == {a.id}, offices
    group = await bank.call("GET", "clients", f"/v1/groups/{a.group['id']}", headers=mine)
    assert set(group["member_ids"]) == a.client_ids

    # loans: loans, group loans, sheets, portfolio, the due list, the branch's cash
    for path, params in (
            (f"/v1/loans/{other_loan}", None), (f"/v1/loans/{other_loan}/schedule", None),
            (f"/v1/loans/{other_loan}/payoff", None),
            (f"/v1/group-loans/{b.group_loan['id']}", None),
            ("/v1/collection-sheets", {"officer_id": b.officer, "date": meeting.isoformat()}),
            ("/v1/collection-sheets", {"group_id": b.group["id"], "date": meeting.isoformat()}),
            (f"/v1/collection-sheets/cs-{meeting:%Y%m%d}-o-{b.officer}", None),
            ("/v1/portfolio", {"office_id": b.id}), ("/v1/portfolio", {"officer_id": b.officer}),
            ("/v1/portfolio/history", {"office_id": b.id}),
            ("/v1/installments/due", {"office_id": b.id}),
            ("/v1/cash-reconciliations", {"office_id": b.id})):
        await bank.call("GET", "loans", path, headers=mine, params=params, expect=404)
    loans = await bank.call("GET", "loans", "/v1/loans", headers=mine, params={"limit": 200})
    assert {x["id"] for x in loans["items"]} == a.loan_ids, loans
    seen = await group_loan(bank, a.group_loan["id"], headers=mine)
    assert {m["loan_id"] for m in seen["members"]} == a.loan_ids
    sheet = await bank.call("GET", "loans", "/v1/collection-sheets", headers=mine,
                            params={"officer_id": a.officer, "date": meeting.isoformat()})
    assert sheet_loans(sheet) == a.loan_ids, sheet
    portfolio = await bank.call("GET", "loans", "/v1/portfolio", headers=mine)
    assert portfolio["scope"]["office_id"] == a.id, portfolio
    assert portfolio["loans_active"] == 3, portfolio
    assert D(portfolio["outstanding_principal"]) == D("3000.00"), portfolio
    due = await bank.call("GET", "loans", "/v1/installments/due", headers=mine,
                          params={"date": meeting.isoformat(), "limit": 500})
    assert {x["loan_id"] for x in due["items"]} == a.loan_ids, due
    await bank.check_invariants(sorted(a.loan_ids | b.loan_ids))


async def test_an_officer_sees_nothing_of_another_branch_in_the_books(bank: Bank,
                                                                     org: Org) -> None:
    mine = org.a.token()
    own_loan = sorted(org.a.loan_ids)[0]
    other_loan = sorted(org.b.loan_ids)[0]
    books = await bank.call("GET", "payments", f"/v1/loans/{own_loan}/portfolio-balance",
                            headers=mine)
    assert D(books["portfolio_balance"]) == D("1000.00")
    answers: dict[str, int] = {}
    for path, params in ((f"/v1/loans/{other_loan}/portfolio-balance", None),
                         (f"/v1/loans/{other_loan}/servicing", None),
                         ("/v1/statements/trial-balance", {"office_id": org.b.id})):
        resp = await bank.request("GET", "payments", path, headers=mine, params=params)
        answers[path] = resp.status_code
    assert set(answers.values()) == {404}, answers


async def test_a_regional_manager_sees_the_region(bank: Bank, org: Org) -> None:
    region = office_bearer(org.region, org.region_path, sub=slug("rm"))
    elsewhere = await bank.onboard()   # a client of the head office, outside the region
    await bank.call("GET", "clients", f"/v1/clients/{elsewhere.client_id}", headers=region,
                    expect=404)
    offices = await bank.call("GET", "clients", "/v1/offices", headers=region)
    assert {o["id"] for o in offices["items"]} == {org.region, org.a.id, org.b.id}
    listed = await bank.call("GET", "clients", "/v1/clients", headers=region,
                             params={"limit": 200})
    assert {c["id"] for c in listed["items"]} == org.a.client_ids | org.b.client_ids
    for branch in (org.a, org.b):
        await bank.call("GET", "clients", f"/v1/groups/{branch.group['id']}", headers=region)
        await group_loan(bank, branch.group_loan["id"], headers=region)
        for loan_id in branch.loan_ids:
            await bank.call("GET", "loans", f"/v1/loans/{loan_id}", headers=region)
        await bank.call("GET", "loans", "/v1/portfolio", headers=region,
                        params={"office_id": branch.id})
    loans = await bank.call("GET", "loans", "/v1/loans", headers=region, params={"limit": 200})
    assert {x["id"] for x in loans["items"]} == org.a.loan_ids | org.b.loan_ids
    portfolio = await bank.call("GET", "loans", "/v1/portfolio", headers=region)
    assert portfolio["loans_active"] == 6 and D(portfolio["outstanding_principal"]) == D(
        "6000.00"), portfolio
    head = await bank.call("GET", "loans", "/v1/portfolio", headers=bank.maker,
                           params={"office_id": org.region})
    assert head["loans_active"] == 6 and head["outstanding_principal"] == portfolio[
        "outstanding_principal"]
    await bank.check_invariants(sorted(org.a.loan_ids | org.b.loan_ids))


# -- 6. the same sheet recorded twice; the branch's cash difference in the ledger ------------
async def test_sheet_recorded_twice_books_once_and_the_cash_difference_is_booked(
        bank: Bank, org: Org) -> None:
    b = org.b
    officer = b.token()
    meeting = await first_meeting(bank, b)
    sheet = await bank.call("GET", "loans", "/v1/collection-sheets", headers=officer,
                            params={"officer_id": b.officer, "date": meeting.isoformat()})
    assert sheet_loans(sheet) == b.loan_ids, sheet
    firsts = {loan_id: (await schedule(bank, loan_id))["installments"][0]
              for loan_id in b.loan_ids}
    lines = [{"loan_id": m["loan_id"], "amount": m["expected"]}
             for g in sheet["groups"] for m in g["members"]]
    for line in lines:
        assert D(line["amount"]) == D(firsts[line["loan_id"]]["total"]), (line, firsts)
    total = sum((D(x["amount"]) for x in lines), ZERO)
    assert D(sheet["totals"]["expected"]) == total

    url = f"/v1/collection-sheets/{sheet['sheet_id']}/collections"
    first_key = key()
    first = await bank.call("POST", "loans", url, headers={**officer, **first_key},
                            expect=201, json={"lines": lines})
    assert first["recorded"] == 3 and D(first["amount_recorded"]) == total, first
    replay = await bank.call("POST", "loans", url, headers={**officer, **first_key},
                             expect=201, json={"lines": lines})
    assert replay == first
    again = await bank.call("POST", "loans", url, headers={**officer, **key()}, expect=201,
                            json={"lines": lines})
    assert again["recorded"] == 0 and again["already_recorded"] == 3, again
    assert D(again["amount_recorded"]) == ZERO
    assert {x["collection_id"] for x in again["lines"]} == {
        x["collection_id"] for x in first["lines"]}

    # Each member's first installment paid once, not twice.
    for loan_id, inst in firsts.items():
        await principal_down_to(bank, loan_id, D("1000.00") - D(inst["principal"]))
    for loan_id in b.loan_ids:
        now = await schedule(bank, loan_id)
        assert now["installments"][0]["status"] == "paid", now["installments"][0]
        assert D(now["installments"][1]["paid"]) == ZERO, now["installments"][1]
        assert len(now["repayments"]) == 1, now["repayments"]

    # The branch's cash account took each collection once.
    cash_account = f"cash:branch:{b.id}"

    async def collections_booked() -> list[dict[str, Any]] | None:
        statement = await bank.call("GET", "payments", f"/v1/accounts/{cash_account}/statement",
                                    headers=bank.maker, params={"limit": 100})
        lines = [x for x in statement["lines"] if x["side"] == "debit"]
        return lines if len(lines) >= 3 else None

    booked = await eventually(collections_booked, what="the collections in the branch's cash")
    assert len(booked) == 3 and sum((D(x["amount"]) for x in booked), ZERO) == total, booked

    # Day-end count: 25.00 short. The difference goes to the branch's cash suspense.
    counted = await bank.call("GET", "loans", "/v1/cash-reconciliations", headers=officer,
                              params={"office_id": b.id, "business_date": meeting.isoformat()})
    assert counted["status"] == "open" and counted["collections"] == 3, counted
    assert D(counted["expected"]) == total
    short = D("25.00")
    done = await bank.call("POST", "loans", "/v1/cash-reconciliations",
                           headers={**officer, **key()}, expect=201,
                           json={"office_id": b.id, "business_date": meeting.isoformat(),
                                 "declared": str(total - short), "note": "counted at close"})
    assert done["status"] == "reconciled" and D(done["difference"]) == -short, done
    await bank.call("POST", "loans", "/v1/cash-reconciliations", headers={**officer, **key()},
                    expect=409, json={"office_id": b.id, "business_date": meeting.isoformat(),
                                      "declared": str(total), "note": "again"})

    async def difference_booked() -> dict[str, dict[str, Any]] | None:
        trial = await bank.call("GET", "payments", "/v1/statements/trial-balance",
                                headers=bank.maker,
                                params={"office_id": b.id, "as_of": meeting.isoformat()})
        rows = {r["code"]: r for r in trial["accounts"]}
        assert trial["balanced"] is True, trial
        row = rows.get("3481")
        if row is None or D(row["debits"]) - D(row["credits"]) != short:
            return None
        return rows

    rows = await eventually(difference_booked, what="the cash difference in the branch's books")
    assert D(rows["1110"]["debits"]) - D(rows["1110"]["credits"]) == total - short, rows["1110"]
    await bank.check_invariants(sorted(b.loan_ids))


# -- 5. a bulk reassignment moves every loan; the next sheet follows -------------------------
async def test_bulk_reassignment_moves_every_loan_and_the_next_sheet(bank: Bank,
                                                                     org: Org) -> None:
    a = org.a
    meeting = await first_meeting(bank, a)
    request = await bank.call("POST", "clients", "/v1/officer-reassignments", expect=201,
                              headers=bank.maker,
                              json={"from_officer_id": a.officer, "to_officer_id": a.spare_officer,
                                    "reason": "maternity cover"})
    assert request["status"] == "pending"
    # Nothing moves before a second operator approves; the proposer cannot.
    await bank.call("POST", "clients", f"/v1/officer-reassignments/{request['id']}/approve",
                    headers=bank.maker, expect=403, json={})
    before = await bank.call("GET", "loans", "/v1/collection-sheets", headers=bank.maker,
                             params={"officer_id": a.officer, "date": meeting.isoformat()})
    assert sheet_loans(before) == a.loan_ids
    approved = await bank.call("POST", "clients",
                               f"/v1/officer-reassignments/{request['id']}/approve",
                               headers=bank.checker, json={})
    assert approved["status"] == "approved", approved
    assert approved["moved_clients"] == 3 and approved["moved_groups"] == 1, approved

    clients = await bank.call("GET", "clients", "/v1/clients", headers=bank.maker,
                              params={"officer_id": a.spare_officer, "limit": 200})
    assert {c["id"] for c in clients["items"]} == a.client_ids
    group = await bank.call("GET", "clients", f"/v1/groups/{a.group['id']}", headers=bank.maker)
    assert group["officer_id"] == a.spare_officer

    async def moved() -> dict[str, Any] | None:
        sheet = await bank.call("GET", "loans", "/v1/collection-sheets", headers=bank.maker,
                                params={"officer_id": a.spare_officer,
                                        "date": meeting.isoformat()})
        return sheet if sheet_loans(sheet) == a.loan_ids else None

    sheet = await eventually(moved, what="the next sheet under the new officer")
    assert D(sheet["totals"]["expected"]) > ZERO
    old = await bank.call("GET", "loans", "/v1/collection-sheets", headers=bank.maker,
                          params={"officer_id": a.officer, "date": meeting.isoformat()})
    assert sheet_loans(old) == set(), old
    for officer, count in ((a.spare_officer, 3), (a.officer, 0)):
        portfolio = await bank.call("GET", "loans", "/v1/portfolio", headers=bank.maker,
                                    params={"officer_id": officer})
        assert portfolio["loans_active"] == count, (officer, portfolio)
    # The new officer's own token reads its sheet.
    mine = await bank.call("GET", "loans", "/v1/collection-sheets",
                           headers=a.token(a.spare_officer),
                           params={"officer_id": a.spare_officer, "date": meeting.isoformat()})
    assert sheet_loans(mine) == a.loan_ids
    await bank.check_invariants(sorted(a.loan_ids))


# -- 4. joint liability: a member in arrears blocks the whole group (last: moves the date) ---
async def refused_credit(bank: Bank, who: Borrower, product: str) -> str:
    """A new loan for ``who``, approved by an operator and refused by clients for the
    group's arrears. The member's payouts are set to fail meanwhile, so a probe made
    before clients has heard of the arrears moves no money (it ends compensated) and is
    simply tried again."""
    await bank.sim_config(msisdn=who.phone, failure_rate=1.0)

    async def probe() -> str | None:
        loan_id = await bank.apply(who, product, "1000.00", 4)
        await bank.approve(loan_id)
        loan = await bank.wait_status(loan_id, "rejected", "disbursement_failed")
        if loan["status"] == "rejected":
            assert "client_in_arrears" in (loan["decision_reason"] or ""), loan
            return loan_id
        return None

    try:
        return await eventually(probe, timeout_s=90, every_s=0.5,
                                what=f"new credit refused to {who.client_id}")
    finally:
        await bank.sim_config(msisdn=who.phone, failure_rate=0.0)


async def granted_credit(bank: Bank, who: Borrower, product: str) -> list[str]:
    """New loans for ``who`` until one is disbursed (those refused before clients heard of
    the cure are kept for the invariants)."""
    tried: list[str] = []

    async def probe() -> str | None:
        loan_id = await bank.apply(who, product, "1000.00", 4)
        tried.append(loan_id)
        await bank.approve(loan_id)
        loan = await bank.wait_status(loan_id, "rejected", "active")
        return loan_id if loan["status"] == "active" else None

    await eventually(probe, timeout_s=90, every_s=0.5, what=f"new credit for {who.client_id}")
    return tried


async def test_member_in_arrears_blocks_new_credit_for_the_whole_group_until_cured(
        bank: Bank) -> None:
    partner = slug("partner")
    late_one, *others = [await bank.onboard(partner=partner) for _ in range(3)]
    group = await form_group(bank, [late_one, *others])
    product = await weekly_product(bank)
    active = await disbursed_group(bank, group["id"], product,
                                   [(w, "1000.00") for w in (late_one, *others)])
    loan_of = {m["client_id"]: m["loan_id"] for m in active["members"]}
    plans = {c: (await schedule(bank, loan))["installments"] for c, loan in loan_of.items()}
    due = date.fromisoformat(plans[late_one.client_id][0]["due_date"])
    # The night after the first meeting (or the business date, if the package is past it).
    late = max(due + timedelta(days=1), await bank.business_date())
    last = date.fromisoformat(plans[late_one.client_id][-1]["due_date"])
    assert late < last, f"the business date {late} is past the group's last meeting {last}"

    # Everyone but one pays, ahead of time, what falls due by that night.
    for who in others:
        owed = [i for i in plans[who.client_id] if date.fromisoformat(i["due_date"]) <= late]
        await bank.repay_from_wallet(who, loan_of[who.client_id],
                                     str(sum((D(i["total"]) for i in owed), ZERO)))
        await principal_down_to(bank, loan_of[who.client_id],
                                D("1000.00") - sum((D(i["principal"]) for i in owed), ZERO))

    await bank.close_business(late)
    assert (await bank.loan(loan_of[late_one.client_id]))["days_in_arrears"] >= 1
    for who in others:
        assert (await bank.loan(loan_of[who.client_id]))["days_in_arrears"] == 0
    in_arrears = await wait_group(bank, active["id"], lambda g: g["in_arrears"], "in arrears")
    assert [m["loan_id"] for m in in_arrears["members"] if m["days_in_arrears"] > 0] == [
        loan_of[late_one.client_id]]

    # Joint liability: members who owe nothing get no new credit either.
    refused = await asyncio.gather(*(refused_credit(bank, who, product) for who in others))

    # The late member pays what is overdue; the next night cures the loan and the group.
    overdue = [i for i in (await schedule(bank, loan_of[late_one.client_id]))["installments"]
               if i["status"] == "overdue"]
    assert overdue
    await bank.repay_from_wallet(
        late_one, loan_of[late_one.client_id],
        str(sum((D(i["total"]) - D(i["paid"]) for i in overdue), ZERO)))
    await principal_down_to(bank, loan_of[late_one.client_id],
                            D("1000.00") - sum((D(i["principal"]) for i in overdue), ZERO))
    await bank.close_business(late + timedelta(days=1))
    assert (await bank.loan(loan_of[late_one.client_id]))["days_in_arrears"] == 0
    await wait_group(bank, active["id"], lambda g: not g["in_arrears"], "cured")
    granted = await granted_credit(bank, others[0], product)
    await bank.check_invariants([*loan_of.values(), *refused, *granted])
