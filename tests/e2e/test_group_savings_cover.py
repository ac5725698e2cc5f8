"""Issue 16 end to end: a group's compulsory savings cover a member's arrears, by
maker-checker, through the real clients, loans, payments, savings and notifications
processes and the mobile-money simulator.

A group of three is disbursed one group loan under the group's rule that its money
covers a member in arrears (``cover_arrears``, which loans announces with
``GroupLoanActive``); each member holds compulsory savings linked to its loan, deposited
in cash at the branch. Two members pay their first meeting ahead; the third does not,
and close of business past the meeting puts that member in arrears (the group with it).
A maker asks that compulsory savings cover the member's arrears — the member's own are
not enough, the others' pay the rest under the group's rule —, the maker's own approval
is refused, a checker approves: each account pays its share of what was overdue as a
repayment through payments (Dr deposit liability /
Cr the loan's repayment suspense, then the loan's portfolio), loans applies it, and the
next night loans says the member and the group are cured. Savings' balance equals the
account's deposit liability in payments' ledger and the trial balance is zero.

Close of business moves the package's one business date forward: the nights are the
group's own (the night after its first meeting, or the business date if the package is
already past it).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.auth import ROLE_SCOPES
from tests.e2e.bank import Bank, Borrower, eventually
from tests.identity import mint_token

pytestmark = pytest.mark.e2e
D = Decimal
ZERO = D("0.00")
OWN = D("50.00")   # the late member's compulsory savings: less than one installment
SAVINGS_SCOPES = ("savings:read", "savings:write", "savings:approve", "products:write")


def operator(sub: str) -> dict[str, str]:
    token = mint_token(sub=sub, scopes=sorted({*ROLE_SCOPES["operator"], *SAVINGS_SCOPES}))
    return {"Authorization": f"Bearer {token}"}


MAKER = operator("operator-salma")
CHECKER = operator("operator-karim")


def keyed(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key or uuid.uuid4().hex}


async def schedule(bank: Bank, loan_id: str) -> list[dict[str, Any]]:
    body = await bank.call("GET", "loans", f"/v1/loans/{loan_id}/schedule", headers=bank.maker)
    items: list[dict[str, Any]] = body["installments"]
    return items


async def group_loan(bank: Bank, group_loan_id: str) -> dict[str, Any]:
    body: dict[str, Any] = await bank.call("GET", "loans", f"/v1/group-loans/{group_loan_id}",
                                           headers=bank.maker)
    return body


async def wait_group(bank: Bank, group_loan_id: str, check: Any, what: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        gl = await group_loan(bank, group_loan_id)
        return gl if check(gl) else None

    return await eventually(probe, timeout_s=90, what=f"group loan {what}")


async def disbursed_group(bank: Bank, members: list[Borrower], product: str, *,
                          cover_arrears: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    group = await bank.call("POST", "clients", "/v1/groups", expect=201, headers=bank.maker,
                            json={"name": f"Tiwizi {uuid.uuid4().hex[:5]}",
                                  "leader_id": members[0].client_id,
                                  "member_ids": [m.client_id for m in members]})
    body = {"group_id": group["id"], "product_id": product, "term": 4,
            "cover_arrears": cover_arrears,
            "members": [{"client_id": m.client_id, "principal": "1000.00"} for m in members]}

    async def applied() -> dict[str, Any] | None:
        resp = await bank.request("POST", "loans", "/v1/group-loans", json=body,
                                  headers=bank.maker)
        if resp.status_code == 201:
            out: dict[str, Any] = resp.json()
            return out
        # loans learns of the group and its members from clients.events a moment later
        assert resp.status_code == 422, resp.text
        return None

    gl = await eventually(applied, timeout_s=30, what="group application accepted")
    await bank.call("POST", "loans", f"/v1/group-loans/{gl['id']}/approve",
                    headers=bank.checker, json={})
    active = await wait_group(bank, gl["id"], lambda g: g["status"] == "active", "active")
    return group, active


async def compulsory_savings(bank: Bank, who: Borrower, product: str, loan_id: str,
                             amount: str) -> str:
    """The member's compulsory account linked to its loan, ``amount`` deposited in cash."""
    body = {"client_id": who.client_id, "product_id": product, "opening_deposit": "0.00",
            "linked_loan_id": loan_id}

    async def opened() -> str | None:
        # savings learns of the client (and of its KYC) from clients.events a moment later
        resp = await bank.request("POST", "savings", "/v1/savings/accounts", json=body,
                                  headers=keyed(MAKER))
        if resp.status_code == 201:
            return str(resp.json()["id"])
        assert resp.status_code in (404, 409), resp.text
        return None

    account_id = await eventually(opened, timeout_s=30, what="compulsory account opened")
    await bank.call("POST", "savings", f"/v1/savings/accounts/{account_id}/deposits",
                    expect=201, headers=keyed(MAKER), json={"amount": amount})
    return account_id


async def savings_equal_books(bank: Bank, account_id: str, balance: Decimal) -> None:
    """Savings holds ``balance`` and payments' ledger says the same for the account."""
    async def agree() -> bool:
        mine = await bank.call("GET", "savings", f"/v1/savings/accounts/{account_id}",
                               headers=MAKER)
        books = await bank.call("GET", "payments", f"/v1/ledger/savings/{account_id}",
                                headers=bank.maker)
        liability = D(books["deposit_liability"]) if books["exists"] else ZERO
        return (D(mine["ledger_balance"]) == balance and liability == balance
                and D(books["withdrawals_in_flight"]) == ZERO)

    await eventually(agree, what=f"savings {account_id} = deposit liability = {balance}")


async def test_a_groups_compulsory_savings_cover_a_members_arrears(bank: Bank) -> None:
    partner = f"partner-{uuid.uuid4().hex[:8]}"
    late_one, *others = [await bank.onboard(partner=partner) for _ in range(3)]
    product = await bank.product(frequency="weekly", annual_rate="0.24", max_term=12)
    # The group's rule (joint liability): the group's money covers a member in arrears —
    # loans announces it with the group loan, and savings lets the others' savings pay.
    group, active = await disbursed_group(bank, [late_one, *others], product,
                                          cover_arrears=True)
    assert active["cover_arrears"] is True
    loan_of = {m["client_id"]: m["loan_id"] for m in active["members"]}
    late_loan = loan_of[late_one.client_id]

    savings_product = await bank.call(
        "POST", "savings", "/v1/savings/products", expect=201, headers=MAKER, json={
            "name": f"Épargne obligatoire {uuid.uuid4().hex[:4]}", "kind": "compulsory",
            "loan_product_id": f"group-{uuid.uuid4().hex[:8]}",
            "amount_per_installment": "10.00"})
    saved = {late_one.client_id: OWN, **{who.client_id: D("400.00") for who in others}}
    accounts = {who.client_id: await compulsory_savings(
        bank, who, savings_product["id"], loan_of[who.client_id], str(saved[who.client_id]))
        for who in (late_one, *others)}
    for client_id, account_id in accounts.items():
        await savings_equal_books(bank, account_id, saved[client_id])

    # Everyone but one pays, ahead of time, what falls due by the night after the meeting.
    plans = {c: await schedule(bank, loan) for c, loan in loan_of.items()}
    due = date.fromisoformat(plans[late_one.client_id][0]["due_date"])
    late = max(due + timedelta(days=1), await bank.business_date())
    last = date.fromisoformat(plans[late_one.client_id][-1]["due_date"])
    assert late < last, f"the business date {late} is past the group's last meeting {last}"
    for who in others:
        owed = [i for i in plans[who.client_id] if date.fromisoformat(i["due_date"]) <= late]
        await bank.repay_from_wallet(who, loan_of[who.client_id],
                                     str(sum((D(i["total"]) for i in owed), ZERO)))

        async def repaid(loan_id: str = loan_of[who.client_id],
                         owed: list[dict[str, Any]] = owed) -> bool:
            principal = D((await bank.loan(loan_id))["outstanding"]["principal"])
            return principal == D("1000.00") - sum((D(i["principal"]) for i in owed), ZERO)
        await eventually(repaid, what="an on-time member's repayment applied")

    # The night after the meeting: the member who did not pay is in arrears.
    await bank.close_business(late)
    assert (await bank.loan(late_loan))["days_in_arrears"] >= 1
    await wait_group(bank, active["id"], lambda g: g["in_arrears"], "in arrears")
    overdue = [i for i in await schedule(bank, late_loan) if i["status"] == "overdue"]
    arrears = sum((D(i["total"]) - D(i["paid"]) for i in overdue), ZERO)
    assert arrears > OWN   # the member's own savings are not enough

    # The maker asks (savings hears of the overdue installment from loans' close of business).
    path = f"/v1/savings/groups/{group['id']}/arrears-cover-requests"
    key = uuid.uuid4().hex

    async def asked() -> dict[str, Any] | None:
        resp = await bank.request("POST", "savings", path, json={"loan_id": late_loan},
                                  headers=keyed(MAKER, key))
        if resp.status_code == 201:
            out: dict[str, Any] = resp.json()
            return out
        assert resp.status_code in (404, 409), resp.text
        return None

    request = await eventually(asked, what="arrears cover requested")
    assert D(request["amount"]) == arrears, (request, overdue)
    assert request["other_members_allowed"] is True
    own, *from_others = request["sources"]
    assert (own["account_id"], D(own["amount"]), own["own"]) == (
        accounts[late_one.client_id], OWN, True)
    others_accounts = {accounts[who.client_id] for who in others}
    assert from_others and all(s["account_id"] in others_accounts and not s["own"]
                               for s in from_others)
    given = {s["account_id"]: D(s["amount"]) for s in from_others}
    assert sum(given.values(), ZERO) == arrears - OWN
    again = await bank.call("POST", "savings", path, expect=201, json={"loan_id": late_loan},
                            headers=keyed(MAKER, key))
    assert again == request
    pending = await bank.call("GET", "savings", "/v1/savings/arrears-cover-requests",
                              headers=CHECKER, params={"status": "pending",
                                                       "group_id": group["id"]})
    assert [r["id"] for r in pending["items"]] == [request["id"]]

    # Maker-checker: the maker's own approval is refused and nothing moves.
    approve = f"/v1/savings/arrears-cover-requests/{request['id']}/approve"
    await bank.call("POST", "savings", approve, expect=403, headers=keyed(MAKER))
    await savings_equal_books(bank, accounts[late_one.client_id], OWN)

    approve_key = uuid.uuid4().hex
    done = await bank.call("POST", "savings", approve, headers=keyed(CHECKER, approve_key))
    assert done["status"] == "approved" and D(done["paid"]) == arrears
    assert await bank.call("POST", "savings", approve,
                           headers=keyed(CHECKER, approve_key)) == done

    # The savings paid the loan as a repayment: loans applied it, the books follow.
    async def applied() -> bool:
        plan = await schedule(bank, late_loan)
        return all(i["status"] != "overdue" for i in plan)
    await eventually(applied, what="the covered installments paid")
    await savings_equal_books(bank, accounts[late_one.client_id], ZERO)
    for who in others:
        account_id = accounts[who.client_id]
        await savings_equal_books(bank, account_id, D("400.00") - given.get(account_id, ZERO))
    statement = await bank.call(
        "GET", "savings", f"/v1/savings/accounts/{accounts[late_one.client_id]}/statement",
        headers=MAKER)
    assert (statement["lines"][-1]["kind"], D(statement["lines"][-1]["amount"])) == (
        "loan_repayment", -OWN)

    # The next night loans says so: the member and the group are cured.
    await bank.close_business(late + timedelta(days=1))
    assert (await bank.loan(late_loan))["days_in_arrears"] == 0
    await wait_group(bank, active["id"], lambda g: not g["in_arrears"], "cured")

    # Compulsory savings stay blocked for anything else.
    keeper = min(others, key=lambda who: given.get(accounts[who.client_id], ZERO))
    withdrawal = await bank.request(
        "POST", "savings", f"/v1/savings/accounts/{accounts[keeper.client_id]}/withdrawals",
        json={"amount": "10.00", "msisdn": keeper.phone}, headers=keyed(MAKER))
    assert withdrawal.status_code == 409, withdrawal.text

    await bank.check_invariants(list(loan_of.values()))
