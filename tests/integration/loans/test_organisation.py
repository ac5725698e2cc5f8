"""Loans follow the organisation: office scope on every route, transfers and
reassignments move loans (and the next collection sheet), the portfolio by office rolls
up to the institution to the centime, cash collected against a sheet is booked once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from shared.contracts.clients import (
    ClientTransferred,
    GroupMemberRemoved,
    LoanOfficerReassigned,
)
from tests.infra import Infra
from tests.integration.loans.cob_helpers import close_of_business
from tests.integration.loans.harness import Loans, running_loans
from tests.integration.loans.org_helpers import (
    PATHS,
    active_loan_of,
    client_in,
    group_of,
    office_token,
    organisation,
)

pytestmark = pytest.mark.integration

D0 = date(2026, 1, 5)          # installments of 312.00 due 5 Feb, 5 Mar, 5 Apr, 5 May
AGADIR, TANGER, SOUSS = (office_token("b-agadir"), office_token("b-tanger"),
                         office_token("r-souss"))


async def status(svc: Loans, url: str, headers: dict[str, str]) -> int:
    return (await svc.client.get(url, headers=headers)).status_code


async def sheet(svc: Loans, headers: dict[str, str], **params: str) -> dict[str, Any]:
    resp = await svc.client.get("/v1/collection-sheets", headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def loans_on(body: dict[str, Any]) -> set[str]:
    return {m["loan_id"] for g in body["groups"] for m in g["members"]}


async def test_office_scope_transfers_and_the_sheet_that_follows(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        await organisation(svc)
        product = await svc.create_product()
        fatima = await client_in(svc, "b-agadir", "lo-youssef", "Fatima Z")
        khadija = await client_in(svc, "m-1", "lo-salma", "Khadija A")
        omar = await client_in(svc, "b-tanger", "lo-karim", "Omar T")
        group = await group_of(svc, "Tamount", "b-agadir", "lo-youssef", [fatima])
        a = await active_loan_of(svc, fatima, product, disbursed_on=D0)
        m = await active_loan_of(svc, khadija, product, disbursed_on=D0)
        t = await active_loan_of(svc, omar, product, disbursed_on=D0)

        # the loan carries its client's office, and says so to payments
        submitted = (await svc.bus.wait_for("LoanSubmitted", loan_id=a["id"]))[0].payload
        assert submitted["office_id"] == "b-agadir"
        assert (await svc.bus.wait_for("DisburseLoan", loan_id=m["id"]))[0].payload[
            "office_id"] == "m-1"
        assert (await svc.bus.wait_for("LoanDisbursed", loan_id=t["id"]))[0].payload[
            "office_id"] == "b-tanger"

        # an officer's token: its branch (and the mobile unit below it), 404 elsewhere
        for url in (f"/v1/loans/{a['id']}", f"/v1/loans/{m['id']}/schedule"):
            assert await status(svc, url, AGADIR) == 200
        for url in (f"/v1/loans/{t['id']}", f"/v1/loans/{t['id']}/schedule"):
            assert await status(svc, url, AGADIR) == 404
            assert await status(svc, url, SOUSS) == 404
            assert await status(svc, url, TANGER) == 200
            assert await status(svc, url, svc.operator) == 200
        resp = await svc.client.post(f"/v1/loans/{t['id']}/write-off", headers=AGADIR, json={})
        assert resp.status_code == 404
        listed = (await svc.client.get("/v1/loans", headers=AGADIR)).json()["items"]
        assert {x["id"] for x in listed} == {a["id"], m["id"]}
        listed = (await svc.client.get("/v1/loans", headers=svc.operator)).json()["items"]
        assert {a["id"], m["id"], t["id"]} <= {x["id"] for x in listed}
        # the portfolio and sheets of elsewhere answer 404 too
        for url in ("/v1/portfolio?office_id=b-tanger", "/v1/portfolio?officer_id=lo-karim",
                    "/v1/portfolio/history?office_id=r-nord",
                    "/v1/collection-sheets?officer_id=lo-karim&date=2026-02-05",
                    "/v1/cash-reconciliations?office_id=b-tanger&business_date=2026-02-05"):
            assert await status(svc, url, AGADIR) == 404, url
        due = (await svc.client.get("/v1/installments/due?date=2026-02-05&scope=on_date",
                                    headers=AGADIR)).json()
        assert {x["loan_id"] for x in due["items"]} == {a["id"], m["id"]}
        assert due["totals"]["count"] == 2
        mine = (await svc.client.get("/v1/portfolio", headers=AGADIR)).json()
        assert mine["loans_active"] == 2 and mine["outstanding_principal"] == "2400.00"
        region = (await svc.client.get("/v1/portfolio", headers=SOUSS)).json()
        assert region["loans_active"] == 2
        assert (await svc.client.get("/v1/portfolio", headers=svc.operator)).json()[
            "loans_active"] == 3

        # the officer's sheet: the group with its member, what is due that day
        day = await sheet(svc, AGADIR, officer_id="lo-youssef", date="2026-02-05")
        assert day["sheet_id"] == "cs-20260205-o-lo-youssef"
        assert [g["group_id"] for g in day["groups"]] == [group]
        line = day["groups"][0]["members"][0]
        assert (line["loan_id"], line["full_name"], line["phone"], line["leader"]) == (
            a["id"], "Fatima Z", "+212612345678", True)
        assert (line["due_today"], line["arrears"], line["expected"]) == (
            "312.00", "0.00", "312.00")
        later = await sheet(svc, AGADIR, officer_id="lo-youssef", date="2026-03-05")
        assert later["groups"][0]["members"][0]["arrears"] == "312.00"
        assert later["totals"]["expected"] == "624.00"
        by_group = await sheet(svc, AGADIR, group_id=group, date="2026-02-05")
        assert loans_on(by_group) == {a["id"]}
        csv = await svc.client.get("/v1/collection-sheets", headers=AGADIR, params={
            "officer_id": "lo-youssef", "date": "2026-02-05", "format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[1].split(",")[6:10] == [
            "+212612345678", a["id"], "", "312.00"] or a["id"] in csv.text
        page = await svc.client.get("/v1/collection-sheets", headers=AGADIR, params={
            "officer_id": "lo-youssef", "date": "2026-02-05", "format": "html"})
        assert page.headers["content-type"].startswith("text/html")
        assert "Fatima Z" in page.text and "312.00" in page.text
        bad = await svc.client.get("/v1/collection-sheets?officer_id=lo-youssef&date=5-2-2026",
                                   headers=AGADIR)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "date"

        # a transfer moves the client's loans; the next sheet follows
        await svc.bus.send(ClientTransferred(
            client_id=fatima, request_id="tr-1", partner_id=svc.partner_id,
            from_office_id="b-agadir", from_office_path=PATHS["b-agadir"],
            to_office_id="b-tanger", to_office_path=PATHS["b-tanger"],
            from_officer_id="lo-youssef", to_officer_id="lo-karim", requested_by="op-1",
            approved_by="op-2"), key=fatima)
        await svc.wait_until(f"SELECT 1 FROM loans WHERE id = '{a['id']}'"
                             " AND office_id = 'b-tanger' AND officer_id = 'lo-karim'")
        assert await status(svc, f"/v1/loans/{a['id']}", AGADIR) == 404
        assert await status(svc, f"/v1/loans/{a['id']}", TANGER) == 200
        assert loans_on(await sheet(svc, AGADIR, officer_id="lo-youssef",
                                    date="2026-02-05")) == set()
        assert loans_on(await sheet(svc, TANGER, officer_id="lo-karim",
                                    date="2026-02-05")) == {a["id"], t["id"]}

        # a reassignment of the officer's portfolio moves the loans of each client
        await svc.bus.send(LoanOfficerReassigned(
            request_id="re-1", client_id=omar, office_id="b-tanger",
            office_path=PATHS["b-tanger"], from_officer_id="lo-karim",
            to_officer_id="lo-nadia", requested_by="op-1", approved_by="op-2"), key=omar)
        await svc.wait_until(f"SELECT 1 FROM loans WHERE id = '{t['id']}'"
                             " AND officer_id = 'lo-nadia'")
        assert loans_on(await sheet(svc, TANGER, officer_id="lo-nadia",
                                    date="2026-02-05")) == {t["id"]}
        assert loans_on(await sheet(svc, TANGER, officer_id="lo-karim",
                                    date="2026-02-05")) == {a["id"]}


async def test_the_roll_up_over_every_branch_is_the_institution_to_the_centime(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        await organisation(svc)
        flat = await svc.create_product(
            penalty={"kind": "flat", "value": "50.00", "tolerance_days": 5})
        declining = await svc.create_product(
            name="Declining", interest_method="declining_balance", annual_rate="0.2437",
            fees=[{"kind": "percent_of_principal", "value": "0.013",
                   "timing": "at_disbursement"}])
        spread = [("b-agadir", "lo-youssef", flat, "1200.00", D0),
                  ("b-agadir", "lo-youssef", declining, "3333.33", date(2025, 11, 17)),
                  ("m-1", "lo-salma", declining, "777.77", D0),
                  ("b-tanger", "lo-karim", flat, "1500.00", date(2025, 12, 1)),
                  ("b-tanger", "lo-nadia", declining, "2468.13", date(2026, 2, 20)),
                  ("b-tanger", None, flat, "999.99", D0)]
        loans = []
        for office, officer, product, principal, on in spread:
            client = await client_in(svc, office, officer)
            loans.append(await active_loan_of(svc, client, product, principal=principal,
                                              disbursed_on=on))
        pid = await svc.pay(loans[0]["id"], "100.00", on=date(2026, 3, 20))
        await svc.bus.wait_for("RepaymentApplied", payment_id=pid)

        run = await close_of_business(svc.client, svc.operator, "2026-03-20")
        assert run["status"] == "succeeded", run
        institution = (await svc.client.get("/v1/portfolio/history",
                                            headers=svc.operator)).json()["items"][0]
        assert Decimal(institution["par"]["par1"]["principal"]) > 0

        async def rollup(**params: str) -> dict[str, Any]:
            resp = await svc.client.get("/v1/portfolio/history", headers=svc.operator,
                                        params=params)
            assert resp.status_code == 200, resp.text
            item: dict[str, Any] = resp.json()["items"][0]
            return item

        def key_figures(s: dict[str, Any]) -> tuple[Any, ...]:
            return (s["loans_active"], Decimal(s["outstanding_principal"]),
                    *(Decimal(s["par"][p]["principal"]) for p in ("par1", "par30", "par90")),
                    *((b["loans"], Decimal(b["principal"]))
                      for b in s["arrears_buckets"].values()))

        def add(x: tuple[Any, ...], y: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(add(a, b) if isinstance(a, tuple) else a + b
                         for a, b in zip(x, y, strict=True))

        branches = [await rollup(office_id=b) for b in ("b-agadir", "b-tanger")]
        total = add(key_figures(branches[0]), key_figures(branches[1]))
        assert total == key_figures(institution)
        assert key_figures(await rollup(office_id="ho")) == key_figures(institution)
        regions = add(key_figures(await rollup(office_id="r-souss")),
                      key_figures(await rollup(office_id="r-nord")))
        assert regions == key_figures(institution)
        officers = [await rollup(officer_id=o) for o in
                    ("lo-youssef", "lo-salma", "lo-karim", "lo-nadia")]
        assert sum(o["loans_active"] for o in officers) == 5
        products = [await rollup(product_id=p) for p in (flat, declining)]
        assert add(key_figures(products[0]), key_figures(products[1])) == key_figures(
            institution)
        # the extras: components, the day's collections, by office
        agadir = branches[0]
        assert agadir["collected"] == {"payments": 1, "amount": "100.00"}
        assert Decimal(agadir["outstanding"]["interest"]) > 0
        assert agadir["restructured"]["loans"] == 0
        scoped = (await svc.client.get("/v1/portfolio", headers=SOUSS)).json()
        assert scoped["last_snapshot"] == await rollup(office_id="r-souss")


async def test_a_sheet_recorded_twice_books_each_repayment_once(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        await organisation(svc)
        product = await svc.create_product()
        a = await active_loan_of(svc, await client_in(svc, "b-agadir", "lo-youssef"),
                                 product, disbursed_on=D0)
        b = await active_loan_of(svc, await client_in(svc, "b-agadir", "lo-youssef"),
                                 product, disbursed_on=D0)
        sheet_id = (await sheet(svc, AGADIR, officer_id="lo-youssef",
                                date="2026-02-05"))["sheet_id"]
        url = f"/v1/collection-sheets/{sheet_id}/collections"
        body = {"lines": [{"loan_id": a["id"], "amount": "312.00"},
                          {"loan_id": b["id"], "amount": "200.00"}]}

        bad = await svc.client.post(url, headers={**AGADIR, "Idempotency-Key": "k0"},
                                    json={"lines": [{"loan_id": a["id"], "amount": 312}]})
        assert bad.status_code == 422 and "amount" in bad.json()["errors"][0]["field"]
        missing = await svc.client.post(url, headers=AGADIR, json=body)
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["field"] == "Idempotency-Key"
        elsewhere = await svc.client.post(url, headers={**TANGER, "Idempotency-Key": "k9"},
                                          json=body)
        assert elsewhere.status_code == 404

        first = await svc.client.post(url, headers={**AGADIR, "Idempotency-Key": "k1"},
                                      json=body)
        assert first.status_code == 201, first.text
        assert first.json()["recorded"] == 2 and first.json()["amount_recorded"] == "512.00"
        replay = await svc.client.post(url, headers={**AGADIR, "Idempotency-Key": "k1"},
                                       json=body)
        assert replay.json() == first.json()
        again = await svc.client.post(url, headers={**AGADIR, "Idempotency-Key": "k2"},
                                      json=body)
        assert again.status_code == 201
        assert [x["status"] for x in again.json()["lines"]] == ["already_recorded"] * 2
        changed = await svc.client.post(url, headers={**AGADIR, "Idempotency-Key": "k3"},
                                        json={"lines": [{"loan_id": a["id"],
                                                         "amount": "10.00"}]})
        assert changed.status_code == 409

        recorded = await svc.bus.wait_for("CashCollectionRecorded", count=2)
        await svc.wait_until("SELECT count(*) = 2 FROM cash_collections")
        assert len(svc.bus.matching("CashCollectionRecorded")) == 2
        cash = {m.payload["loan_id"]: m.payload for m in recorded}
        assert cash[a["id"]]["cash_account"] == "cash:branch:b-agadir"
        assert cash[a["id"]]["collected_on"] == "2026-02-05"
        assert cash[a["id"]]["amount"] == "312.00"

        # payments turns each into one RepaymentReceived (twice here: a redelivery)
        for _ in range(2):
            for loan_id, p in cash.items():
                await svc.pay(loan_id, p["amount"], on=date(2026, 2, 5),
                              payment_id=p["collection_id"])
        for p in cash.values():
            await svc.bus.wait_for("RepaymentApplied", payment_id=p["collection_id"])
        await svc.wait_until("SELECT count(*) = 2 FROM repayments WHERE outcome = 'applied'")
        assert len(svc.bus.matching("RepaymentApplied")) == 2
        after = await sheet(svc, AGADIR, officer_id="lo-youssef", date="2026-02-05")
        assert after["totals"]["collected"] == "512.00"
        assert after["totals"]["expected"] == "112.00"

        # the branch's day-end cash: expected vs declared, the difference to suspense
        count = await svc.client.get("/v1/cash-reconciliations", headers=AGADIR, params={
            "office_id": "b-agadir", "business_date": "2026-02-05"})
        assert count.json()["expected"] == "512.00" and count.json()["status"] == "open"
        declared = await svc.client.post(
            "/v1/cash-reconciliations", headers={**AGADIR, "Idempotency-Key": "c1"},
            json={"office_id": "b-agadir", "business_date": "2026-02-05",
                  "declared": "500.00"})
        assert declared.status_code == 201, declared.text
        assert declared.json()["difference"] == "-12.00"
        event = (await svc.bus.wait_for("BranchCashReconciled"))[0].payload
        assert (event["expected"], event["declared"], event["difference"]) == (
            "512.00", "500.00", "-12.00")
        assert event["suspense_account"] == "suspense:cash:branch:b-agadir"
        twice = await svc.client.post(
            "/v1/cash-reconciliations", headers={**AGADIR, "Idempotency-Key": "c2"},
            json={"office_id": "b-agadir", "business_date": "2026-02-05",
                  "declared": "512.00"})
        assert twice.status_code == 409


async def test_a_removed_member_leaves_the_groups_sheet_and_its_next_application(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        await organisation(svc)
        product = await svc.create_product()
        members = [await client_in(svc, "b-agadir", "lo-youssef", name=f"Member {i}")
                   for i in range(4)]
        loans = [(await active_loan_of(svc, c, product, disbursed_on=D0))["id"]
                 for c in members]
        group = await group_of(svc, "Tamount", "b-agadir", "lo-youssef", members)
        before = await sheet(svc, AGADIR, group_id=group, date="2026-02-05")
        assert loans_on(before) == set(loans)

        removed = GroupMemberRemoved(
            group_id=group, partner_id=svc.partner_id, client_id=members[3],
            removed_by="op-1", reason="moved to another douar", member_ids=members[:3],
            office_id="b-agadir", office_path=PATHS["b-agadir"], officer_id="lo-youssef")
        env = await svc.bus.send(removed, key=group)
        await svc.bus.send(removed, key=group, env=env)          # redelivered
        # a later event of the same group: once it is applied, so is the redelivery
        await svc.bus.send(LoanOfficerReassigned(
            request_id="re-g", group_id=group, office_id="b-agadir",
            office_path=PATHS["b-agadir"], from_officer_id="lo-youssef",
            to_officer_id="lo-salma", requested_by="op-1", approved_by="op-2"), key=group)
        await svc.wait_until(f"SELECT 1 FROM group_projection WHERE group_id = '{group}'"
                             " AND officer_id = 'lo-salma'")
        assert await svc.wait_until(
            f"SELECT count(*) FROM inbox WHERE event_id = '{env.event_id}'") == 1
        assert await svc.wait_until(
            f"SELECT count(*) FROM group_members WHERE group_id = '{group}'") == 3

        after = await sheet(svc, AGADIR, group_id=group, date="2026-02-05")
        assert loans_on(after) == set(loans[:3])
        assert members[3] not in {m["client_id"] for g in after["groups"]
                                  for m in g["members"]}

        # a group application naming the removed member is refused, naming that member
        resp = await svc.client.post("/v1/group-loans", headers=svc.partner, json={
            "group_id": group, "product_id": product, "term": 4,
            "members": [{"client_id": c, "principal": "1000.00"} for c in members]})
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["errors"][0]["field"] == "members.3.client_id"
