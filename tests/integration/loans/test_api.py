"""The HTTP API: bad input writes nothing, illegal transitions, maker-checker, tenancy,
product versions."""

from __future__ import annotations

import pytest

from tests.infra import Infra
from tests.integration.loans.harness import Loans, running_loans, token

pytestmark = pytest.mark.integration


async def written(svc: Loans) -> tuple[int, int, int, int]:
    return (await svc.count("loans"), await svc.count("installments"),
            await svc.count("outbox"), await svc.count("products"))


def problem_fields(resp: object) -> list[str]:
    body = resp.json()  # type: ignore[attr-defined]
    assert resp.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    return [e["field"] for e in body.get("errors", [])]


async def test_bad_applications_are_refused_naming_the_field_and_write_nothing(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product(min_principal="1000.00", max_principal="5000.00",
                                           min_term=3, max_term=12)
        client_id = await svc.register_client()
        other_partners_client = await svc.register_client(partner_id="partner_elsewhere")
        before = await written(svc)
        good = {"client_id": client_id, "product_id": product, "principal": "2000.00",
                "term": 6}
        cases = [
            ({"principal": "999.99"}, "principal"),
            ({"principal": "5000.01"}, "principal"),
            ({"term": 2}, "term"),
            ({"term": 13}, "term"),
            ({"term": "6"}, "term"),
            ({"term": 6.0}, "term"),
            ({"client_id": "cli_nobody"}, "client_id"),
            ({"client_id": other_partners_client}, "client_id"),
            ({"product_id": "prd_nothing"}, "product_id"),
            ({"principal": 2000.0}, "principal"),           # a float for money
            ({"principal": 2000}, "principal"),             # a JSON number at all
            ({"principal": "2000.001"}, "principal"),       # more than cents
            ({"principal": "2,000.00"}, "principal"),
            ({"principal": "-2000.00"}, "principal"),
            ({"principal": "abc"}, "principal"),
            ({"currency": "EUR"}, "currency"),              # unknown field
        ]
        for change, field in cases:
            resp = await svc.client.post("/v1/loans", headers=svc.partner,
                                         json={**good, **change})
            assert resp.status_code == 422, (change, resp.text)
            assert field in problem_fields(resp), (change, resp.json())
        missing = await svc.client.post("/v1/loans", headers=svc.partner,
                                        json={"client_id": client_id})
        assert missing.status_code == 422
        assert {"product_id", "principal", "term"} <= set(problem_fields(missing))
        assert await written(svc) == before

        ok = await svc.client.post("/v1/loans", headers=svc.partner, json=good)
        assert ok.status_code == 201


async def test_bad_products_are_refused_naming_the_field(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        good = {"name": "Weekly", "interest_method": "declining_balance",
                "frequency": "weekly", "annual_rate": "0.24", "min_principal": "500.00",
                "max_principal": "5000.00", "min_term": 4, "max_term": 26}
        cases = [
            ({"annual_rate": 0.24}, "annual_rate"),
            ({"annual_rate": "24%"}, "annual_rate"),
            ({"annual_rate": "11"}, "annual_rate"),
            ({"max_principal": "100.00"}, "max_principal"),
            ({"min_principal": 500.0}, "min_principal"),
            ({"max_term": 2}, "max_term"),
            ({"grace_principal": 4}, "grace_principal"),
            ({"frequency": "daily"}, "frequency"),
            ({"fees": [{"kind": "percent_of_principal", "value": "2",
                        "timing": "at_disbursement"}]}, "fees[0].value"),
            ({"fees": [{"kind": "flat", "value": 10, "timing": "at_disbursement"}]},
             "fees.0.value"),
            ({"allocation_order": ["principal", "interest", "fees"]}, "allocation_order"),
        ]
        for change, field in cases:
            resp = await svc.client.post("/v1/products", headers=svc.operator,
                                         json={**good, **change})
            assert resp.status_code == 422, (change, resp.text)
            assert field in problem_fields(resp), (change, resp.json())
        assert await svc.count("products") == 0
        partner = await svc.client.post("/v1/products", headers=svc.partner, json=good)
        assert partner.status_code == 403
        created = await svc.client.post("/v1/products", headers=svc.operator, json=good)
        assert created.status_code == 201 and created.json()["version"] == 1


async def test_illegal_transitions_are_409_and_approval_needs_a_second_operator(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()

        # maker-checker: the operator who submitted cannot approve
        own = await svc.client.post("/v1/loans", headers=svc.operator, json={
            "client_id": client_id, "product_id": product, "principal": "1200.00",
            "term": 4})
        assert own.status_code == 201
        own_id = own.json()["id"]
        outbox = await svc.count("outbox")
        same = await svc.client.post(f"/v1/loans/{own_id}/approve", headers=svc.operator)
        assert same.status_code == 403
        assert "maker-checker" in same.json()["detail"]
        assert (await svc.get(own_id))["status"] == "submitted"
        assert await svc.count("sagas") == 0 and await svc.count("outbox") == outbox
        partner_approves = await svc.client.post(f"/v1/loans/{own_id}/approve",
                                                 headers=svc.partner)
        assert partner_approves.status_code == 403
        assert (await svc.client.post(f"/v1/loans/{own_id}/approve",
                                      headers=svc.checker)).status_code == 200

        loan = await svc.apply(client_id, product)
        lid = loan["id"]
        for action in ("write-off",):
            resp = await svc.client.post(f"/v1/loans/{lid}/{action}", headers=svc.operator,
                                         json={})
            assert resp.status_code == 409, resp.text
        withdrawn = await svc.client.post(f"/v1/loans/{lid}/withdraw", headers=svc.partner,
                                          json={"reason": "client changed her mind"})
        assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
        for action, headers, body in (("approve", svc.checker, None),
                                      ("reject", svc.checker, {"reason": "late"}),
                                      ("withdraw", svc.partner, {}),
                                      ("write-off", svc.operator, {})):
            resp = await svc.client.post(f"/v1/loans/{lid}/{action}", headers=headers,
                                         json=body)
            assert resp.status_code == 409, (action, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
            assert resp.json()["status_now"] == "withdrawn"

        approved = await svc.apply(client_id, product)
        await svc.approve(approved["id"])
        again = await svc.client.post(f"/v1/loans/{approved['id']}/approve",
                                      headers=svc.checker)
        assert again.status_code == 409
        late_withdraw = await svc.client.post(f"/v1/loans/{approved['id']}/withdraw",
                                              headers=svc.partner, json={})
        assert late_withdraw.status_code == 409
        assert await svc.count("sagas") == 2

        rejected = await svc.apply(client_id, product)
        resp = await svc.client.post(f"/v1/loans/{rejected['id']}/reject",
                                     headers=svc.checker, json={"reason": "income unproven"})
        assert resp.status_code == 200 and resp.json()["status"] == "rejected"
        event = (await svc.bus.wait_for("LoanRejected", loan_id=rejected["id"]))[0].payload
        assert event["rejected_by"] == "op-checker"


async def test_partners_see_only_their_own_loans(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        mine = await svc.apply(await svc.register_client(), product)
        other_partner = "partner_other"
        theirs_client = await svc.register_client(partner_id=other_partner)
        other = token("partner", "agent-9", other_partner)
        theirs = await svc.client.post("/v1/loans", headers=other, json={
            "client_id": theirs_client, "product_id": product, "principal": "800.00",
            "term": 2})
        assert theirs.status_code == 201
        theirs_id = theirs.json()["id"]

        for path in (f"/v1/loans/{theirs_id}", f"/v1/loans/{theirs_id}/schedule"):
            assert (await svc.client.get(path, headers=svc.partner)).status_code == 404
        assert (await svc.client.post(f"/v1/loans/{theirs_id}/withdraw", headers=svc.partner,
                                      json={})).status_code == 404
        listed = (await svc.client.get("/v1/loans", headers=svc.partner)).json()["items"]
        assert [x["id"] for x in listed] == [mine["id"]]
        by_client = (await svc.client.get("/v1/loans", headers=svc.partner,
                                          params={"client_id": theirs_client})).json()
        assert by_client["items"] == []
        everything = (await svc.client.get("/v1/loans", headers=svc.operator,
                                           params={"status": "submitted"})).json()["items"]
        assert {x["id"] for x in everything} == {mine["id"], theirs_id}
        bad = await svc.client.get("/v1/loans", headers=svc.operator,
                                   params={"status": "sleeping"})
        assert bad.status_code == 422 and problem_fields(bad) == ["status"]
        assert (await svc.client.get("/v1/portfolio", headers=svc.partner)).status_code == 403
        assert (await svc.client.get("/v1/sagas", headers=svc.partner)).status_code == 403
        assert (await svc.client.get("/v1/loans")).status_code == 401


async def test_a_new_product_version_does_not_change_existing_loans(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        before = await svc.apply(client_id, product)
        assert before["product_version"] == 1
        resp = await svc.client.put(f"/v1/products/{product}", headers=svc.operator, json={
            "name": "Flat monthly", "interest_method": "flat", "frequency": "monthly",
            "annual_rate": "0.24", "min_principal": "500.00", "max_principal": "20000.00",
            "min_term": 2, "max_term": 24})
        assert resp.status_code == 200 and resp.json()["version"] == 2
        after = await svc.apply(client_id, product)
        assert after["product_version"] == 2
        assert [i["interest"] for i in after["schedule"]] == ["24.00"] * 4
        kept = (await svc.client.get(f"/v1/loans/{before['id']}/schedule",
                                     headers=svc.partner)).json()["installments"]
        assert [i["interest"] for i in kept] == ["12.00"] * 4
        listing = (await svc.client.get("/v1/products", headers=svc.partner)).json()["items"]
        assert [(p["id"], p["version"], p["annual_rate"]) for p in listing] == [
            (product, 2, "0.24")]
        detail = (await svc.client.get(f"/v1/products/{product}", headers=svc.partner)).json()
        assert [v["version"] for v in detail["versions"]] == [1, 2]
        missing = await svc.client.put("/v1/products/prd_none", headers=svc.operator, json={
            "name": "x", "interest_method": "flat", "frequency": "monthly",
            "annual_rate": "0.24", "min_principal": "500.00", "max_principal": "20000.00",
            "min_term": 2, "max_term": 24})
        assert missing.status_code == 404
        assert await svc.count("products") == 2


async def test_application_replays_with_the_same_idempotency_key(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        body = {"client_id": client_id, "product_id": product, "principal": "1200.00",
                "term": 4}
        headers = {**svc.partner, "Idempotency-Key": "apply-1"}
        first = await svc.client.post("/v1/loans", headers=headers, json=body)
        second = await svc.client.post("/v1/loans", headers=headers, json=body)
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] == second.json()["id"]
        assert await svc.count("loans") == 1
        changed = await svc.client.post("/v1/loans", headers=headers,
                                        json={**body, "term": 5})
        assert changed.status_code == 422
        assert problem_fields(changed) == ["Idempotency-Key"]


async def test_loans_oldest_submitted_first_with_a_cursor_and_no_empty_last_page(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        applied = [await svc.apply(client_id, product) for _ in range(4)]
        assert all(a["submitted_at"] for a in applied)
        # by submission time, oldest first, two a page: exactly two pages, the last one
        # says so (no empty third page)
        pages, cursor = [], None
        while True:
            params = {"order": "submitted", "limit": 2, **({"cursor": cursor} if cursor else {})}
            resp = await svc.client.get("/v1/loans", headers=svc.operator, params=params)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            pages.append([x["id"] for x in body["items"]])
            assert body["next_after"] is None   # an id cursor only pages the id order
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == [[applied[0]["id"], applied[1]["id"]],
                         [applied[2]["id"], applied[3]["id"]]]
        listed = (await svc.client.get("/v1/loans", headers=svc.operator,
                                       params={"order": "submitted"})).json()["items"]
        stamps = [x["submitted_at"] for x in listed]
        assert stamps == sorted(stamps) and stamps[0] == applied[0]["submitted_at"]

        # the default order (by id) keeps ``after`` and ends without an empty page too
        ids = sorted(a["id"] for a in applied)
        first = (await svc.client.get("/v1/loans", headers=svc.operator,
                                      params={"limit": 2})).json()
        assert [x["id"] for x in first["items"]] == ids[:2] and first["next_after"] == ids[1]
        last = (await svc.client.get("/v1/loans", headers=svc.operator,
                                     params={"limit": 2, "after": first["next_after"]})).json()
        assert [x["id"] for x in last["items"]] == ids[2:]
        assert (last["next_after"], last["next_cursor"]) == (None, None)
        by_cursor = (await svc.client.get("/v1/loans", headers=svc.operator, params={
            "limit": 2, "cursor": first["next_cursor"]})).json()
        assert [x["id"] for x in by_cursor["items"]] == ids[2:]

        for params, field in (({"cursor": "nonsense"}, "cursor"),
                              ({"order": "id", "cursor": cursor_of(listed, "submitted")},
                               "cursor"),
                              ({"order": "submitted", "after": ids[0]}, "after"),
                              ({"order": "newest"}, "order")):
            bad = await svc.client.get("/v1/loans", headers=svc.operator, params=params)
            assert bad.status_code == 422, (params, bad.text)
            assert problem_fields(bad) == [field]


def cursor_of(items: list[dict[str, object]], order: str) -> str:
    from datetime import datetime

    from services.loans.api import cursors
    last = items[-1]
    return cursors.encode(order, datetime.fromisoformat(str(last["submitted_at"])),
                          str(last["id"]))


async def test_loan_references_are_looked_up_in_their_canonical_form(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        loan = await svc.apply(await svc.register_client(), product)
        spelled = f"  {loan['id'].upper()}"
        for path in (f"/v1/loans/{spelled}", f"/v1/loans/{spelled}/schedule"):
            resp = await svc.client.get(path, headers=svc.operator)
            assert resp.status_code == 200, resp.text
            assert loan["id"] in (resp.json().get("id"), resp.json().get("loan_id"))
        withdrawn = await svc.client.post(f"/v1/loans/{loan['id'].upper()}/withdraw",
                                          headers=svc.partner, json={})
        assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
        for unparseable in ("a b", "loan\u00e9", "x" * 101):
            resp = await svc.client.get(f"/v1/loans/{unparseable}", headers=svc.operator)
            assert resp.status_code == 404 and problem_fields(resp) == ["loan_id"]


async def test_sagas_are_keyset_paged_oldest_first_or_most_recent_first(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        sagas = [await svc.approve((await svc.apply(client_id, product))["id"])
                 for _ in range(3)]

        async def walk(order: str) -> list[list[str]]:
            pages: list[list[str]] = []
            cursor = None
            while True:
                params = {"order": order, "limit": 2, **({"cursor": cursor} if cursor else {})}
                resp = await svc.client.get("/v1/sagas", headers=svc.operator, params=params)
                assert resp.status_code == 200, resp.text
                body = resp.json()
                pages.append([s["id"] for s in body["items"]])
                assert body["counts"] == {"reserving_credit": 3}
                cursor = body["next_cursor"]
                if cursor is None:
                    return pages
        assert await walk("oldest") == [sagas[:2], sagas[2:]]
        assert await walk("recent") == [sagas[::-1][:2], sagas[::-1][2:]]
        one = (await svc.client.get("/v1/sagas", headers=svc.operator,
                                    params={"limit": 3})).json()
        assert len(one["items"]) == 3 and one["next_cursor"] is None   # no empty page
        recent = (await svc.client.get("/v1/sagas", headers=svc.operator,
                                       params={"order": "recent", "limit": 1})).json()
        for params, field in (({"order": "oldest", "cursor": recent["next_cursor"]}, "cursor"),
                              ({"cursor": "bm9wZQ"}, "cursor"), ({"order": "sideways"}, "order"),
                              ({"state": "sleeping"}, "state")):
            bad = await svc.client.get("/v1/sagas", headers=svc.operator, params=params)
            assert bad.status_code == 422 and problem_fields(bad) == [field], bad.text
