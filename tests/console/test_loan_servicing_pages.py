"""The loan-servicing pages against the fake loans service: the loan's reference, TEG and
schedule versions, a payoff quote, a reschedule proposed by one operator and approved by
another (the maker's 403 shown), write-off and waiver proposals and their queue, the
business date and holidays, the due list paged, the branch dashboard's drill-down, the
collection sheet with one idempotent cash entry, and the branch's day-end cash count."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.console import fake_loans
from tests.console.conftest import SERVICES, csrf_from
from tests.console.fake_platform import Served, State, build_service
from tests.console.operators import console_as
from tests.console.test_fake_matches_openapi import client, installment, loan

LOAN = "L-serv-1"


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[dict[str, str], State]]:
    state = State()
    state.clients["C-1"] = client("C-1")
    state.loans[LOAN] = loan(LOAN, "C-1")
    state.schedules[LOAN] = [installment(k) for k in range(1, 5)]
    fake_loans.arrange(state.servicing, state.loans, LOAN)
    state.servicing.requests.clear()   # each test proposes its own
    state.ops.offices.extend([
        {"id": "r-1", "kind": "region", "name": "Souss-Massa", "parent_id": "head",
         "path": "head/r-1", "status": "open", "opened_by": "system",
         "created_at": fake_loans.T0, "updated_at": fake_loans.T0},
        {"id": "b-1", "kind": "branch", "name": "Agence Tiznit", "parent_id": "r-1",
         "path": "head/r-1/b-1", "status": "open", "opened_by": "system",
         "created_at": fake_loans.T0, "updated_at": fake_loans.T0}])
    state.ops.staff.append({"id": "st-1", "full_name": "Samir Alami", "role": "loan_officer",
                            "office_id": "b-1", "office_path": "head/r-1/b-1", "active": True,
                            "created_by": "agent", "created_at": fake_loans.T0,
                            "updated_at": fake_loans.T0})
    ls = state.servicing
    ls.portfolios[("r-1", "")] = fake_loans.scoped_portfolio("r-1", None, "9000.00",
                                                             "0.1800", "900.00")
    served = {name: Served(build_service(name, state)) for name in SERVICES}
    for s in served.values():
        s.start()
    yield {name: s.url for name, s in served.items()}, state
    for s in served.values():
        s.stop()


def posted(state: State, path: str) -> list[Any]:
    return [c for c in state.calls if c.path == path and c.method in ("POST", "PUT")]


async def test_loan_page_shows_reference_teg_and_links_to_servicing(world: Any) -> None:
    urls, state = world
    async with console_as(urls, state, "amina") as amina:
        page = await amina.get(f"/loans/{LOAN}?lang=fr")
        assert page.status_code == 200
        assert "NR7K2Q9M4X" in page.text and "TEG" in page.text
        assert "31,24\u00a0%" in page.text and "812,40 MAD" in page.text
        assert f'href="/loans/{LOAN}/servicing"' in page.text
        servicing = await amina.get(f"/loans/{LOAN}/servicing?date=2026-12-01&lang=en")
        assert servicing.status_code == 200
        assert "4,085.20 MAD" in servicing.text and "420.00 MAD" in servicing.text
        assert 'data-version="1"' in servicing.text and "Current version: v2" in servicing.text
        assert any(c.body == {"date": "2026-12-01"} for c in state.calls
                   if c.path.endswith("/payoff"))


async def test_reschedule_is_proposed_by_one_operator_and_approved_by_another(
        world: Any) -> None:
    urls, state = world
    async with console_as(urls, state, "amina") as amina, \
            console_as(urls, state, "youssef") as youssef:
        form = await amina.get(f"/loans/{LOAN}/servicing")
        sent = await amina.post(f"/loans/{LOAN}/reschedule", data={
            "csrf_token": csrf_from(form.text), "term": "6", "moratorium": "1",
            "grace": "0", "cure_installments": "3", "capitalise_interest": "on",
            "reason": "récolte perdue"})
        assert sent.status_code == 303
        target = sent.headers["location"]
        assert target.startswith("/reschedule-requests/")
        assert posted(state, f"/v1/loans/{LOAN}/reschedule")[-1].body == {
            "term": 6, "grace": 0, "moratorium": 1, "capitalise_interest": True,
            "cure_installments": 3, "reason": "récolte perdue"}
        preview = await amina.get(target)
        assert 'id="preview"' in preview.text and "31,20" in preview.text   # TEG
        request_id = target.split("/")[2].split("?")[0]
        refused = await amina.post(f"/reschedule-requests/{request_id}/approve",
                                   data={"csrf_token": csrf_from(preview.text)})
        assert refused.status_code == 403
        assert "maker-checker" in refused.text
        seen = await youssef.get(f"/reschedule-requests/{request_id}")
        done = await youssef.post(f"/reschedule-requests/{request_id}/approve",
                                  data={"csrf_token": csrf_from(seen.text)})
        assert done.status_code == 303
        assert state.loans[LOAN]["restructured"] is True
        after = await youssef.get(f"/loans/{LOAN}")
        assert 'data-flag="restructured"' in after.text
        # found by id from the queue page (loans lists no reschedule requests)
        found = await youssef.get(f"/reschedule-requests?id={request_id}")
        assert found.headers["location"] == f"/reschedule-requests/{request_id}"


async def test_write_off_and_waiver_are_proposals_a_second_operator_decides(
        world: Any) -> None:
    urls, state = world
    async with console_as(urls, state, "amina") as amina, \
            console_as(urls, state, "youssef") as youssef:
        form = await amina.get(f"/loans/{LOAN}/servicing")
        token = csrf_from(form.text)
        waived = await amina.post(f"/loans/{LOAN}/waivers", data={
            "csrf_token": token, "amount": "50,00", "reason": "sécheresse"})
        assert waived.status_code == 303
        assert posted(state, f"/v1/loans/{LOAN}/waivers")[-1].body == {
            "amount": "50.00", "reason": "sécheresse"}
        written = await amina.post(f"/loans/{LOAN}/write-off", data={
            "csrf_token": token, "reason": "irrécouvrable"})
        assert written.status_code == 303
        queue = await amina.get("/loan-requests?lang=en")
        ours = [r for r in state.servicing.requests if r["proposed_by"] == "amina"]
        assert len(ours) == 2 and all(f'data-request="{r["id"]}"' in queue.text for r in ours)
        assert "Your request: another operator must approve it." in queue.text
        refused = await amina.post(f"/loan-requests/{ours[0]['id']}/approve",
                                   data={"csrf_token": csrf_from(queue.text)})
        assert refused.status_code == 403 and "another operator must" in refused.text
        other = await youssef.get("/loan-requests")
        token = csrf_from(other.text)
        ok = await youssef.post(f"/loan-requests/{ours[0]['id']}/approve",
                                data={"csrf_token": token, "back": "/loan-requests"})
        assert ok.status_code == 303 and "flash=request_approved" in ok.headers["location"]
        no = await youssef.post(f"/loan-requests/{ours[1]['id']}/reject",
                                data={"csrf_token": token, "reason": "pas encore"})
        assert no.status_code == 303
        assert [r["status"] for r in ours] == ["approved", "rejected"]
        # without the CSRF field nothing is sent
        before = len(state.calls)
        forged = await youssef.post(f"/loans/{LOAN}/write-off", data={"reason": "x"})
        assert forged.status_code == 403 and len(state.calls) == before


async def test_business_date_and_holidays_admin(world: Any) -> None:
    urls, state = world
    async with console_as(urls, state, "amina") as amina:
        page = await amina.get("/calendar?year=2026")
        assert page.status_code == 200
        assert 'data-figure="business-date">30/11/2026' in page.text
        assert 'data-flag="provisional"' in page.text and "Aïd al-Fitr" in page.text
        token = csrf_from(page.text)
        added = await amina.post("/calendar/holidays", data={
            "csrf_token": token, "day": "2026-12-31", "name": "Fin d'année"})
        assert added.status_code == 303
        assert "2026-12-31" in state.servicing.holidays
        confirmed = await amina.post("/calendar/holidays/2026-12-20", data={
            "csrf_token": token, "name": "Aïd al-Fitr", "new_date": "2026-12-21",
            "action": "save"})
        assert confirmed.status_code == 303
        moved = state.servicing.holidays["2026-12-21"]
        assert moved["provisional"] is False and "2026-12-20" not in state.servicing.holidays
        removed = await amina.post("/calendar/holidays/2026-12-31", data={
            "csrf_token": token, "action": "remove"})
        assert removed.status_code == 303 and "2026-12-31" not in state.servicing.holidays
        days = await amina.post("/calendar/working-days", data={
            "csrf_token": token, "weekday": ["0", "1", "2", "3", "4", "5"]})
        assert days.status_code == 303 and state.servicing.working_weekdays == [0, 1, 2, 3, 4, 5]
        twice = await amina.post("/calendar/holidays", data={
            "csrf_token": token, "day": "2026-12-21", "name": "again"})
        assert twice.status_code == 409


async def test_due_list_pages_through_everything_oldest_first(world: Any) -> None:
    urls, state = world
    state.servicing.due = [fake_loans.due_item(f"L-due-{n:03d}", 1,
                                               f"2026-{10 + n % 2}-{1 + n % 28:02d}", n)
                           for n in range(230)]
    async with console_as(urls, state, "amina") as amina:
        seen: list[str] = []
        url: str | None = "/due?date=2026-11-30&lang=en"
        pages = 0
        while url:
            page = await amina.get(url)
            assert page.status_code == 200
            rows = page.text.split('<tr data-loan="')[1:]
            dates = [r.split("<td>")[1].split("<")[0] for r in rows]
            assert dates == sorted(dates)   # oldest first on each page
            seen += [r.split('"')[0] for r in rows]
            nxt = page.text.split('rel="next" href="')
            url = nxt[1].split('"')[0].replace("&amp;", "&") if len(nxt) > 1 else None
            pages += 1
        assert pages == 3 and len(set(seen)) == 230
        assert "Days late" in page.text and 'data-gap="due-filters"' in page.text


async def test_branch_dashboard_drills_down_region_branch_officer(world: Any) -> None:
    urls, state = world
    async with console_as(urls, state, "amina") as amina:
        region = await amina.get("/branches?office_id=r-1&lang=en")
        assert region.status_code == 200
        assert 'data-office="b-1"' in region.text and "24.00%" in region.text
        branch = await amina.get("/branches?office_id=b-1&lang=en")
        assert 'data-officer="st-1"' in branch.text and "450.00 MAD" in branch.text
        assert "10.00%" in branch.text   # the officer's PAR1
        officer = await amina.get("/branches?office_id=b-1&officer_id=st-1")
        assert "/collection-sheet?officer_id=st-1" in officer.text
        asked = [c.body for c in state.calls if c.path == "/v1/portfolio"]
        assert {"office_id": "r-1"} in asked and {"officer_id": "st-1"} in asked


async def test_collection_sheet_records_every_line_once(world: Any) -> None:
    urls, state = world
    async with console_as(urls, state, "amina") as amina:
        page = await amina.get("/collection-sheet?officer_id=st-1&date=2026-11-30&lang=en")
        assert page.status_code == 200
        assert "Groupe Tifaout" in page.text and "Individual borrowers" in page.text
        assert "650.00 MAD" in page.text and "+212612345678" in page.text
        assert 'href="/collection-sheet/cs-20261130-o-st-1/csv"' in page.text
        key = page.text.split('name="idempotency_key" value="')[1].split('"')[0]
        form = {"csrf_token": csrf_from(page.text), "idempotency_key": key,
                "officer_id": "st-1", "day": "2026-11-30",
                "loan_id": ["L-s1", "L-s2", "L-s3"], "amount": ["150,00", "", "300"]}
        first = await amina.post("/collection-sheet/cs-20261130-o-st-1/collections",
                                 data=form)
        assert first.status_code == 200 and "2 line(s) recorded for 450.00 MAD" in first.text
        again = await amina.post("/collection-sheet/cs-20261130-o-st-1/collections",
                                 data=form)
        assert again.status_code == 200 and "2 line(s) recorded" in again.text
        sent = posted(state, "/v1/collection-sheets/cs-20261130-o-st-1/collections")
        assert len(sent) == 2 and {c.body["idempotency_key"] for c in sent} == {key}
        assert sent[0].body["lines"] == [{"loan_id": "L-s1", "amount": "150.00"},
                                         {"loan_id": "L-s3", "amount": "300.00"}]
        csv = await amina.get("/collection-sheet/cs-20261130-o-st-1/csv")
        assert csv.headers["content-type"].startswith("text/csv")
        assert "Fatima Zahra" in csv.text
        printable = await amina.get("/collection-sheet/cs-20261130-o-st-1/print")
        assert printable.status_code == 200 and "Khadija Amrani" in printable.text
        fresh = await amina.get("/collection-sheet?officer_id=st-1&date=2026-11-30")
        assert 'data-collected="L-s1"' in fresh.text
        assert fresh.text.split('name="idempotency_key" value="')[1].split('"')[0] != key


async def test_branch_cash_count_shows_expected_declared_and_difference(world: Any) -> None:
    urls, state = world
    async with console_as(urls, state, "amina") as amina:
        page = await amina.get("/branch-cash?office_id=b-1&date=2026-11-30&lang=en")
        assert page.status_code == 200 and "650.00 MAD" in page.text
        key = page.text.split('name="idempotency_key" value="')[1].split('"')[0]
        done = await amina.post("/branch-cash", data={
            "csrf_token": csrf_from(page.text), "office_id": "b-1", "day": "2026-11-30",
            "declared": "640,00", "note": "billet manquant", "idempotency_key": key})
        assert done.status_code == 303
        assert posted(state, "/v1/cash-reconciliations")[-1].body["idempotency_key"] == key
        counted = await amina.get(done.headers["location"] + "&lang=en")
        assert 'data-figure="difference">-10.00 MAD' in counted.text
        assert 'data-action="count-cash"' not in counted.text


async def test_new_pages_are_french_first(world: Any) -> None:
    urls, state = world
    async with console_as(urls, state, "amina") as amina:
        for path, words in (("/calendar", "Date de travail"), ("/due", "Jours de retard"),
                            ("/branches", "Tableau de bord des agences"),
                            ("/loan-requests", "Demandes sur prêts à approuver"),
                            ("/collection-sheet", "Feuille de collecte"),
                            ("/branch-cash", "Caisse de l'agence")):
            page = await amina.get(path, headers={"Accept-Language": "fr"})
            assert page.status_code == 200, path
            assert words in page.text.replace("&#39;", "'"), path
