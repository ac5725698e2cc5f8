"""Savings (accounts, statement with running balance, available against ledger,
withdrawals in flight or in doubt, the day's movements, the client file) and the
organisation (office tree, staff, transfers and reassignments by two operators)."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.console.conftest import csrf_from
from tests.console.fake_platform import State
from tests.console.operators import console_as
from tests.console.test_pages import text_of
from tests.console.test_paging import next_link


def savings_account(state: State, client_id: str) -> str:
    account_id = str(uuid.uuid4())
    state.ops.savings_accounts[account_id] = {
        "id": account_id, "payment_reference": f"SAV-{account_id}", "client_id": client_id,
        "partner_id": "p", "office_id": "b-agadir", "office_path": "head/b-agadir",
        "product_id": "SP-libre", "product_version": 2, "kind": "voluntary",
        "status": "active", "currency": "MAD", "ledger_balance": "750.00",
        "held_balance": "200.00", "available_balance": "550.00", "opening_deposit": "500.00",
        "blocked": False, "block_reason": None, "opened_by": "agent", "approved_by": None,
        "linked_loan_id": None, "linked_loan_closed": False, "maturity_date": None,
        "maturity_instruction": None, "last_client_transaction_on": "2026-11-20",
        "opened_on": "2026-10-03", "closed_on": None}
    state.ops.savings_lines[account_id] = [
        {"id": 1, "kind": "deposit", "amount": "500.00", "value_date": "2026-10-03",
         "channel": "opening", "reference": None, "balance": "500.00"},
        {"id": 2, "kind": "deposit", "amount": "300.00", "value_date": "2026-11-05",
         "channel": "mobile_money", "reference": "SIM-9", "balance": "800.00"},
        {"id": 3, "kind": "withdrawal_fee", "amount": "-50.00", "value_date": "2026-11-20",
         "channel": None, "reference": None, "balance": "750.00"}]
    state.ops.savings_withdrawals.append({
        "id": str(uuid.uuid4()), "account_id": account_id, "client_id": client_id,
        "amount": "200.00", "fee": "0.00", "msisdn": "+212612345678", "status": "in_doubt",
        "requested_by": "agent", "requested_on": "2026-11-29", "reason": None,
        "provider_reference": None, "created_at": "2026-11-29T09:00:00+00:00",
        "updated_at": "2026-11-29T09:00:00+00:00"})
    return account_id


async def test_a_savings_account_with_its_statement_balances_and_withdrawals(
        fake_services: dict[str, str], fake_state: State) -> None:
    client_id = f"C-{uuid.uuid4().hex[:8]}"
    account_id = savings_account(fake_state, client_id)
    async with console_as(fake_services, fake_state, "amina") as console:
        found = await console.get("/savings", params={"q": f"sav-{account_id.upper()}"})
        assert found.status_code == 303
        assert found.headers["location"] == f"/savings/accounts/{account_id}"
        page = await console.get(found.headers["location"], params={"month": "2026-11"})
        body = text_of(page).replace("\u202f", " ")
        assert page.status_code == 200 and f"SAV-{account_id}" in body
        assert 'data-figure="ledger">750,00 MAD' in body
        assert 'data-figure="available">550,00 MAD' in body
        # payments' mirror: the deposit liability plus the withdrawal in flight
        assert 'data-figure="liability">550,00 MAD' in body and "200,00 MAD" in body
        assert 'data-figure="opening">500,00' in body and 'data-figure="closing">750,00' in body
        assert "frais de retrait" in body and "SIM-9" in body
        assert 'rel="prev" href="/savings/accounts/' in page.text and "2026-10" in body
        october = await console.get(f"/savings/accounts/{account_id}?month=2026-10")
        assert 'data-line="1"' in october.text and 'data-line="2"' not in october.text
        assert 'href="/payouts/withdrawal:' in page.text  # the in-doubt withdrawal


async def test_savings_lists_products_open_withdrawals_and_the_day(
        fake_services: dict[str, str], fake_state: State) -> None:
    client_id = f"C-{uuid.uuid4().hex[:8]}"
    account_id = savings_account(fake_state, client_id)
    fake_state.ops.savings_products.append({
        "id": "SP-libre", "version": 2, "name": "Épargne libre", "currency": "MAD",
        "is_current": True, "created_by": "hq", "created_at": "2026-10-01T00:00:00+00:00",
        "terms": {"kind": "voluntary", "annual_rate": "0.03", "withdrawal_fee": "5.00"}})
    fake_state.payments_day = {"date": "2026-11-29", "timezone": "UTC", "items": [
        {"id": "pay-s", "kind": "collection", "status": "posted", "amount": "250.00",
         "loan_id": f"SAV-{account_id}", "msisdn": "+212600000009", "provider": "sim",
         "at": "2026-11-29T09:00:00+00:00", "reason": None},
        {"id": "pay-l", "kind": "collection", "status": "posted", "amount": "99.00",
         "loan_id": "ln-x", "msisdn": "+212600000008", "provider": "sim",
         "at": "2026-11-29T09:30:00+00:00", "reason": None}],
        "totals": {}, "next_cursor": None}
    try:
        async with console_as(fake_services, fake_state, "amina") as console:
            products = text_of(await console.get("/savings/products"))
            assert "Épargne libre" in products and "3,00" in products
            open_ = await console.get("/savings/withdrawals")
            section = open_.text[open_.text.index('data-withdrawal-status="in_doubt"'):]
            assert account_id[:8] in section
            listing = await console.get("/savings", params={"client_id": client_id})
            assert f'data-savings-account="{account_id}"' in listing.text
            day = await console.get("/savings/day", params={"date": "2026-11-29"})
            body = text_of(day)
            assert 'data-deposit="pay-s"' in day.text and "pay-l" not in day.text
            assert account_id[:8] in body[body.index('id="day-withdrawals"'):]
            # savings lists no deposits by day: said so with the endpoint, not made up
            assert 'data-unavailable="savings"' in day.text
            assert "GET /v1/savings/deposits" in body
    finally:
        fake_state.payments_day = None


async def test_the_client_file_shows_savings_beside_loans_and_the_block_reason(
        fake_services: dict[str, str], fake_state: State) -> None:
    client_id = f"C-{uuid.uuid4().hex[:8]}"
    fake_state.clients[client_id] = {
        "id": client_id, "full_name": "Khadija Ouali", "phone": "+212600000001",
        "kyc_status": "verified", "blocked": True, "block_reason": "fraude présumée",
        "onboarded_by": "agent"}
    fake_state.credit[client_id] = {"client_id": client_id, "credit_limit": "5000.00",
                                    "exposure": "0.00", "available": "5000.00"}
    account_id = savings_account(fake_state, client_id)
    async with console_as(fake_services, fake_state, "amina") as console:
        page = await console.get(f"/clients/{client_id}")
    body = text_of(page)
    assert "fraude présumée" in body
    assert f'data-savings-account="{account_id}"' in page.text
    assert body.index("Prêts") < body.index('id="client-savings"')


async def test_the_health_strip_includes_savings(
        fake_services: dict[str, str], fake_state: State) -> None:
    async with console_as(fake_services, fake_state, "amina") as console:
        strip = await console.get("/fragments/health")
    assert 'class="health up" data-service="savings"' in strip.text


async def test_the_office_tree_and_staff_page_through_everything(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    region = f"r-{uuid.uuid4().hex[:6]}"
    fake_state.ops.offices.append({
        "id": region, "kind": "region", "name": "Souss", "parent_id": "head",
        "path": f"head/{region}", "status": "open", "opened_by": "hq", "created_at": None,
        "updated_at": None})
    branches = [f"{region}-b{n:03d}" for n in range(230)]
    fake_state.ops.offices.extend({
        "id": b, "kind": "branch", "name": f"Agence {b}", "parent_id": region,
        "path": f"head/{region}/{b}", "status": "open", "opened_by": "hq",
        "created_at": None, "updated_at": None} for b in branches)
    seen: list[str] = []
    url: str | None = "/organisation"
    while url:
        page = await signed_in.get(url)
        seen += re.findall(r'data-office="([^"]+)"', page.text)
        url = next_link(page.text)
    assert set(branches) | {region} <= set(seen) and len(seen) == len(set(seen))
    assert seen.index(region) < seen.index(branches[0])  # parents before children
    first = await signed_in.get("/organisation")
    assert f'data-office="{region}" data-depth="1"' in first.text

    fake_state.ops.staff.extend({
        "id": f"{region}-s{n:03d}", "full_name": f"Agent {n}", "role": "loan_officer",
        "office_id": branches[0], "office_path": f"head/{region}/{branches[0]}",
        "active": True, "created_by": "hq", "created_at": None, "updated_at": None}
        for n in range(120))
    staff: list[str] = []
    url = f"/organisation/staff?office_id={branches[0]}"
    while url:
        page = await signed_in.get(url)
        staff += re.findall(r'data-staff="([^"]+)"', page.text)
        url = next_link(page.text)
    assert len(staff) == 120 and len(set(staff)) == 120
    assert "agent de crédit" in text_of(page)


def org_request(kind: str, requested_by: str, minute: int) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "kind": kind, "status": "pending",
            "client_id": f"C-{minute}" if kind == "transfer" else None,
            "from_office_id": "b-1", "from_office_path": "head/b-1", "to_office_id": "b-2",
            "to_office_path": "head/b-2", "from_officer_id": "st-1", "to_officer_id": "st-2",
            "reason": "déménagement", "requested_by": requested_by,
            "requested_at": f"2026-11-2{minute // 60}T10:{minute % 60:02d}:00+00:00",
            "decided_by": None, "decided_at": None, "decision_reason": None,
            "moved_clients": 0, "moved_groups": 0}


async def test_transfers_and_reassignments_wait_for_a_second_operator(
        signed_in: httpx.AsyncClient, fake_services: dict[str, str],
        fake_state: State) -> None:
    fake_state.ops.requests = [r for r in fake_state.ops.requests if r["status"] != "pending"]
    transfers = [org_request("transfer", "amina", m) for m in reversed(range(70))]
    fake_state.ops.requests.extend(transfers)
    reassignment = org_request("reassignment", "samir", 1)
    fake_state.ops.requests.append(reassignment)
    seen: list[str] = []
    url: str | None = "/organisation/requests?kind=transfers"
    while url:
        page = await signed_in.get(url)
        seen += re.findall(r'data-request="([^"]+)"', page.text)
        url = next_link(page.text)
    assert seen == [str(r["id"]) for r in reversed(transfers)]  # oldest first, all of them

    oldest = str(transfers[-1]["id"])
    page = await signed_in.get("/organisation/requests?kind=transfers")
    assert "Votre demande" in text_of(page)
    mine = await signed_in.post(f"/organisation/requests/transfers/{oldest}/approve",
                                data={"csrf_token": csrf_from(page.text)})
    assert mine.status_code == 403
    async with console_as(fake_services, fake_state, "youssef") as checker:
        queue = await checker.get("/organisation/requests?kind=reassignments")
        assert f'data-request="{reassignment["id"]}"' in queue.text
        csrf = csrf_from(queue.text)
        no_reason = await checker.post(
            f"/organisation/requests/reassignments/{reassignment['id']}/reject",
            data={"csrf_token": csrf, "reason": ""})
        assert no_reason.status_code == 422
        approved = await checker.post(
            f"/organisation/requests/reassignments/{reassignment['id']}/approve",
            data={"csrf_token": csrf,
                  "back": "/organisation/requests?kind=reassignments"})
        assert approved.status_code == 303
        assert approved.headers["location"].endswith("flash=request_approved")
        rejected = await checker.post(f"/organisation/requests/transfers/{oldest}/reject",
                                      data={"csrf_token": csrf, "reason": "mauvaise agence"})
        assert rejected.status_code == 303
    assert reassignment["status"] == "approved" and reassignment["decided_by"] == "youssef"
    assert transfers[-1]["status"] == "rejected"
    assert transfers[-1]["decision_reason"] == "mauvaise agence"
