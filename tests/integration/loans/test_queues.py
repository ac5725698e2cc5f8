"""The operators' queues, keyset-paged and scoped: rescheduling requests and loan requests
(oldest first), and the due list by office subtree, loan officer and due date."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.infra import Infra
from tests.integration.loans.harness import Loans, running_loans, token
from tests.integration.loans.org_helpers import (
    active_loan_of,
    client_in,
    office_token,
    organisation,
)

AGADIR, TANGER = office_token("b-agadir"), office_token("b-tanger")


async def walk(svc: Loans, url: str, headers: dict[str, str], **params: Any
               ) -> tuple[list[list[dict[str, Any]]], dict[str, Any]]:
    """Every page of a listing; the pages and the last answer."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await svc.client.get(url, headers=headers, params=query)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages, body
        assert len(pages) < 20


async def three_branches(svc: Loans) -> dict[str, dict[str, Any]]:
    await organisation(svc)
    product = await svc.create_product()
    loans: dict[str, dict[str, Any]] = {}
    for name, office, officer, day in (("agadir", "b-agadir", "lo-youssef", 20),
                                       ("mobile", "m-1", "lo-salma", 5),
                                       ("tanger", "b-tanger", "lo-karim", 10)):
        client = await client_in(svc, office, officer, name)
        loans[name] = await active_loan_of(svc, client, product,
                                           disbursed_on=date(2026, 1, day))
    return loans


async def test_reschedule_and_loan_requests_are_queued_oldest_first_and_scoped(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema, write_off_min_days_in_arrears=0) as svc:
        loans = await three_branches(svc)
        asked = []
        for name in ("agadir", "mobile", "tanger"):
            resp = await svc.client.post(f"/v1/loans/{loans[name]['id']}/reschedule",
                                         headers=svc.operator,
                                         json={"moratorium": 1, "reason": name})
            assert resp.status_code == 201, resp.text
            asked.append(resp.json()["id"])
        bulk = await svc.client.post("/v1/reschedule-requests/bulk-moratorium",
                                     headers=svc.operator,
                                     json={"partner_id": svc.partner_id, "moratorium": 1})
        assert bulk.status_code == 201, bulk.text
        asked.append(bulk.json()["id"])

        url = "/v1/reschedule-requests"
        pages, _ = await walk(svc, url, svc.operator, status="pending", limit=3)
        assert [[r["id"] for r in p] for p in pages] == [asked[:3], asked[3:]]
        # an office sees its subtree's loans (a bulk request naming a loan elsewhere: not)
        agadir, _ = await walk(svc, url, AGADIR, status="pending")
        assert [r["id"] for r in agadir[0]] == asked[:2]
        tanger, _ = await walk(svc, url, TANGER, status="pending")
        assert [r["id"] for r in tanger[0]] == [asked[2]]
        mine, _ = await walk(svc, url, svc.partner, limit=1)
        assert [p[0]["id"] for p in mine] == asked
        theirs, _ = await walk(svc, url, token("partner", "agent-9", "p-other"))
        assert theirs == [[]]
        # decided: out of the pending queue
        done = await svc.client.post(f"{url}/{asked[0]}/approve", headers=svc.checker)
        assert done.status_code == 200, done.text
        pending, _ = await walk(svc, url, svc.operator, status="pending")
        assert [r["id"] for r in pending[0]] == asked[1:]
        approved, _ = await walk(svc, url, svc.operator, status="approved")
        assert [r["id"] for r in approved[0]] == [asked[0]]
        bad = await svc.client.get(url, headers=svc.operator, params={"cursor": "nope"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"

        # write-off proposals: the approvals queue, oldest first, paged, scoped
        proposed = []
        for name in ("tanger", "agadir", "mobile"):
            resp = await svc.client.post(f"/v1/loans/{loans[name]['id']}/write-off",
                                         headers=svc.operator, json={"reason": name})
            assert resp.status_code == 202, resp.text
            proposed.append(resp.json()["id"])
        queue = "/v1/loan-requests"
        pages, _ = await walk(svc, queue, svc.operator, status="pending", limit=2)
        assert [[r["id"] for r in p] for p in pages] == [proposed[:2], proposed[2:]]
        agadir, _ = await walk(svc, queue, AGADIR, status="pending")
        assert [r["id"] for r in agadir[0]] == proposed[1:]
        first = (await svc.client.get(queue, headers=svc.operator,
                                      params={"limit": 1})).json()["next_cursor"]
        # one queue's cursor is not the other's
        crossed = await svc.client.get(url, headers=svc.operator, params={"cursor": first})
        assert crossed.status_code == 422 and crossed.json()["errors"][0]["field"] == "cursor"
        assert (await svc.client.get(queue, headers=svc.partner)).status_code == 403


async def test_the_due_list_by_office_officer_and_due_date(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        loans = await three_branches(svc)
        ids = {v["id"]: k for k, v in loans.items()}
        url = "/v1/installments/due"
        day = {"date": "2026-03-12"}

        def rows(pages: list[list[dict[str, Any]]]) -> list[tuple[str, str, int]]:
            return [(i["due_date"], ids[i["loan_id"]], i["installment"])
                    for p in pages for i in p]

        everything, last = await walk(svc, url, svc.operator, **day)
        by_due, last_by_due = await walk(svc, url, svc.operator, order="due_date", limit=2,
                                         **day)
        assert len(by_due) == 3 and all(len(p) <= 2 for p in by_due)
        # oldest due date first: the mobile unit's Feb 5th, Tanger's 10th, Agadir's 20th…
        got = rows(by_due)
        assert [r[1:] for r in got] == [("mobile", 1), ("tanger", 1), ("agadir", 1),
                                        ("mobile", 2), ("tanger", 2)]
        assert got == sorted(got) and sorted(got) == sorted(rows(everything))
        assert last_by_due["totals"] == last["totals"]

        # the office's subtree (the region: its branch and the mobile unit below it)
        region, body = await walk(svc, url, svc.operator, office_id="r-souss", **day)
        assert sorted(rows(region)) == [r for r in got if r[1] in ("agadir", "mobile")]
        assert body["totals"]["count"] == 3
        officer, body = await walk(svc, url, svc.operator, officer_id="lo-salma",
                                   order="due_date", **day)
        assert [r[1:] for r in rows(officer)] == [("mobile", 1), ("mobile", 2)]
        assert body["totals"]["count"] == 2
        unit, _ = await walk(svc, url, svc.operator, office_id="m-1", **day)
        assert [r[1:] for r in rows(unit)] == [("mobile", 1), ("mobile", 2)]
        # an office's token: its subtree by default, 404 for an office or officer elsewhere
        mine, _ = await walk(svc, url, TANGER, order="due_date", **day)
        assert [r[1:] for r in rows(mine)] == [("tanger", 1), ("tanger", 2)]
        for params in ({"office_id": "b-agadir"}, {"officer_id": "lo-youssef"},
                       {"office_id": "nowhere"}):
            resp = await svc.client.get(url, headers=TANGER, params={**params, **day})
            assert resp.status_code == 404, (params, resp.text)
        # a cursor of one order is refused by the other
        loan_order = (await svc.client.get(url, headers=svc.operator,
                                           params={"limit": 1, **day})).json()["next_cursor"]
        crossed = await svc.client.get(url, headers=svc.operator,
                                       params={"order": "due_date", "cursor": loan_order, **day})
        assert crossed.status_code == 422 and crossed.json()["errors"][0]["field"] == "cursor"
