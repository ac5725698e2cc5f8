"""Reconciliation alerts (oldest first, filtered, paged, resolved with a note, run now) and
accounting (statements per office with CSV and drill-down, journals by two operators,
period close)."""

from __future__ import annotations

import html
import re
import uuid

import httpx

from tests.console.conftest import csrf_from
from tests.console.fake_platform import State
from tests.console.operators import console_as
from tests.console.test_pages import text_of
from tests.console.test_paging import next_link


def alert(provider: str, n: int, day: str = "2026-11-28", status: str = "open"
          ) -> dict[str, object]:
    return {"id": f"{provider}-{n:03d}", "provider": provider, "business_date": day,
            "mismatch": "theirs_only", "reference": f"SIM-{n}", "kind": "collection",
            "loan_id": f"ln-{n}", "ours_amount": None, "theirs_amount": "250.00",
            "status": status, "raised_at": f"2026-11-28T{n // 60:02d}:{n % 60:02d}:00+00:00",
            "resolved_at": None, "resolved_by": None, "resolution_note": None}


async def test_alerts_are_listed_oldest_first_filtered_and_paged_to_the_end(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    provider = f"mm{uuid.uuid4().hex[:6]}"
    fake_state.ops.alerts.extend(alert(provider, n) for n in reversed(range(70)))
    fake_state.ops.alerts.append(alert(provider, 99, day="2026-11-27"))
    fake_state.ops.alerts.append(alert(provider, 98, status="resolved"))
    url: str | None = f"/reconciliation/alerts?provider={provider}&date=2026-11-28&status=open"
    seen: list[str] = []
    while url:
        page = await signed_in.get(url)
        assert page.status_code == 200
        seen += re.findall(r'data-alert="([^"]+)"', page.text)
        url = next_link(page.text)
    assert seen == [f"{provider}-{n:03d}" for n in range(70)]  # oldest first, each once
    asked = [c for c in fake_state.calls if c.path == "/v1/reconciliation/alerts"][-1]
    assert asked.body["provider"] == provider and asked.body["date"] == "2026-11-28"
    assert asked.body["status"] == "open" and asked.body["cursor"]


async def test_an_alert_is_resolved_with_a_note_and_a_run_can_be_started(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    provider = f"mm{uuid.uuid4().hex[:6]}"
    fake_state.ops.alerts.append(alert(provider, 1))
    page = await signed_in.get("/reconciliation/alerts", params={"provider": provider})
    csrf = csrf_from(page.text)
    assert 'id="run-now"' in page.text and "Rapprocher maintenant" in text_of(page)
    refused = await signed_in.post(f"/reconciliation/alerts/{provider}-001/resolve",
                                   data={"csrf_token": csrf, "note": " "})
    assert refused.status_code == 422 and "note" in text_of(refused)
    done = await signed_in.post(f"/reconciliation/alerts/{provider}-001/resolve", data={
        "csrf_token": csrf, "note": "credited by hand, ticket 42",
        "back": f"/reconciliation/alerts?provider={provider}&status="})
    assert done.status_code == 303 and done.headers["location"].endswith("flash=alert_resolved")
    after = text_of(await signed_in.get(done.headers["location"]))
    assert "Alerte résolue." in after and "credited by hand, ticket 42" in after
    assert "amina" in after

    ran = await signed_in.post("/reconciliation/run", data={
        "csrf_token": csrf, "provider": provider, "date": "2026-11-28"})
    assert ran.status_code == 303 and "flash=recon_ran" in ran.headers["location"]
    assert fake_state.ops.runs[-1] == {"provider": provider, "date": "2026-11-28",
                                       "by": "amina"}
    no_csrf = await signed_in.post("/reconciliation/run", data={"provider": provider})
    assert no_csrf.status_code == 403


def gl(code: str, kind: str, balance: str, office: str | None = None) -> dict[str, object]:
    debit = balance if kind in ("asset", "expense") else "0.00"
    credit = "0.00" if kind in ("asset", "expense") else balance
    return {"code": code, "name_fr": f"Compte {code}", "name_ar": "", "type": kind,
            "parent_code": None, "regulator_code": f"R{code}", "debits": debit,
            "credits": credit, "balance": balance, "office_id": office}


async def test_statements_per_office_with_csv_and_drill_down_to_the_lines(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    office = f"b-{uuid.uuid4().hex[:6]}"
    fake_state.ops.offices.append({
        "id": office, "kind": "branch", "name": "Agadir", "parent_id": "head",
        "path": f"head/{office}", "status": "open", "opened_by": "hq", "created_at": None,
        "updated_at": None})
    fake_state.ops.gl.extend([gl("2100", "asset", "5000.00", office),
                              gl("5100", "equity", "4600.00", office),
                              gl("7110", "income", "600.00", office),
                              gl("6110", "expense", "200.00", office)])
    fake_state.ops.gl_lines["7110"] = [
        {"line_id": n, "account_id": "income:interest", "side": "credit", "amount": "6.00",
         "office_id": office, "transfer_id": f"T-{n}", "kind": "repayment",
         "loan_id": f"ln-{n}", "memo": None, "business_date": "2026-11-20",
         "posted_at": "2026-11-20T10:00:00+00:00"} for n in range(1, 151)]
    sheet = await signed_in.get("/accounting", params={
        "statement": "balance-sheet", "as_of": "2026-11-30", "office_id": office})
    body = text_of(sheet).replace("\u202f", " ")
    assert sheet.status_code == 200 and "Bilan" in body and "Agadir" in body
    assert 'data-gl="2100"' in sheet.text and "5 000,00" in body
    assert "Résultat non encore clôturé" in body and "400,00 MAD" in body
    assert 'data-figure="balanced"' in sheet.text
    asked = fake_state.ops.statement_calls[-1]
    assert asked == {"statement": "balance_sheet", "as_of": "2026-11-30", "office_id": office}

    income = await signed_in.get("/accounting", params={
        "statement": "income", "from": "2026-11-01", "to": "2026-11-30", "office_id": office})
    text = text_of(income)
    assert "Résultat net" in text and "400,00 MAD" in text
    drill = re.search(r'href="(/accounting/gl/7110\?[^"]+)"', income.text)
    assert drill
    seen: list[str] = []
    url: str | None = drill.group(1).replace("&amp;", "&")
    assert f"office_id={office}" in url and "from=2026-11-01" in url
    while url:
        page = await signed_in.get(url)
        seen += re.findall(r'data-line="([^"]+)"', page.text)
        url = next_link(page.text)
    assert sorted(map(int, seen)) == list(range(1, 151)) and len(seen) == len(set(seen))
    asked = [c.body for c in fake_state.calls if c.path == "/v1/gl-accounts/7110/lines"]
    assert asked[-1]["cursor"] and "before" not in asked[-1]   # payments' next_cursor

    csv_link = re.search(r'id="csv-download" href="([^"]+)"', income.text)
    assert csv_link
    csv = await signed_in.get(csv_link.group(1).replace("&amp;", "&"))
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"] and office in \
        csv.headers["content-disposition"]
    assert "income,7110,600.00" in csv.text


async def test_a_manual_journal_is_approved_by_another_operator_not_its_maker(
        signed_in: httpx.AsyncClient, fake_services: dict[str, str],
        fake_state: State) -> None:
    journal_id = str(uuid.uuid4())
    fake_state.ops.journals.append({
        "id": journal_id, "business_date": "2026-11-28", "reason": "loyer de novembre",
        "attachments": ["dms://inv/42"],
        "lines": [{"gl_code": "6750", "side": "debit", "amount": "1200.00"},
                  {"gl_code": "1140", "side": "credit", "amount": "1200.00"}],
        "office_id": None, "amount": "1200.00", "status": "proposed", "proposed_by": "amina",
        "proposed_at": "2026-11-28T09:00:00+00:00", "decided_by": None, "decided_at": None,
        "decision_note": None, "transfer_id": None})
    page = await signed_in.get("/accounting/journals")
    assert f'data-journal="{journal_id}"' in page.text
    assert "Vous avez proposé cette écriture" in text_of(page)
    mine = await signed_in.post(f"/accounting/journals/{journal_id}/approve",
                                data={"csrf_token": csrf_from(page.text)})
    assert mine.status_code == 403 and "another operator must" in text_of(mine)
    async with console_as(fake_services, fake_state, "youssef") as checker:
        seen = await checker.get("/accounting/journals")
        done = await checker.post(f"/accounting/journals/{journal_id}/approve",
                                  data={"csrf_token": csrf_from(seen.text), "note": "vu"})
        assert done.status_code == 303
        assert "Écriture approuvée" in text_of(await checker.get(done.headers["location"]))
    journal = next(j for j in fake_state.ops.journals if j["id"] == journal_id)
    assert journal["status"] == "approved" and journal["decided_by"] == "youssef"


async def test_period_close_status_and_closing_a_month(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    page = await signed_in.get("/accounting/periods")
    assert 'id="close-period"' in page.text and "Période en cours" in text_of(page)
    done = await signed_in.post("/accounting/periods/close", data={
        "csrf_token": csrf_from(page.text), "period": "2026-09"})
    assert done.status_code == 303
    after = await signed_in.get(done.headers["location"])
    assert 'data-period="2026-09"' in after.text and "Période clôturée." in text_of(after)
    early = await signed_in.post("/accounting/periods/close", data={
        "csrf_token": csrf_from(page.text), "period": "2999-01"})
    assert early.status_code == 409 and "not over yet" in text_of(early)


def journal(n: int, tag: str, status: str = "proposed") -> dict[str, object]:
    return {"id": f"{tag}-{n:03d}", "business_date": "2026-11-28", "reason": f"frais {tag}",
            "attachments": [],
            "lines": [{"gl_code": "6750", "side": "debit", "amount": "10.00"},
                      {"gl_code": "1140", "side": "credit", "amount": "10.00"}],
            "office_id": None, "amount": "10.00", "status": status, "proposed_by": "karim",
            "proposed_at": f"2026-11-{1 + n // 60:02d}T08:{n % 60:02d}:00+00:00",
            "decided_by": None, "decided_at": None, "decision_note": None,
            "transfer_id": None}


async def test_journals_are_a_queue_paged_oldest_first_to_the_last_one(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    tag = f"jq{uuid.uuid4().hex[:6]}"
    fake_state.ops.journals.extend(journal(n, tag) for n in reversed(range(130)))
    fake_state.ops.journals.append(journal(999, tag, status="approved"))
    url: str | None = "/accounting/journals?status=proposed"
    seen: list[str] = []
    pages = 0
    while url:
        pages += 1
        assert pages <= 20, "the journals' next page never ends"
        page = await signed_in.get(url)
        assert page.status_code == 200 and 'data-truncated="payments"' not in page.text
        seen += re.findall(r'data-journal="([^"]+)"', page.text)
        url = next_link(page.text)
    mine = [j for j in seen if j.startswith(tag)]
    assert mine == [f"{tag}-{n:03d}" for n in range(130)]   # oldest first, each once
    assert len(seen) == len(set(seen))
    asked = [c.body for c in fake_state.calls if c.path == "/v1/journals"]
    assert asked[-1]["order"] == "asc" and asked[-1]["cursor"]
    assert all(a["status"] == "proposed" for a in asked[-pages:])


async def test_a_journal_decision_submitted_twice_carries_the_forms_one_key(
        signed_in: httpx.AsyncClient, fake_services: dict[str, str],
        fake_state: State) -> None:
    tag = f"jd{uuid.uuid4().hex[:6]}"
    fake_state.ops.journals.append({**journal(1, tag), "proposed_at": "2000-01-01T00:00:00+00:00"})
    journal_id = f"{tag}-001"
    async with console_as(fake_services, fake_state, "youssef") as checker:
        page = await checker.get("/accounting/journals")
        form = re.search(rf'action="/accounting/journals/{journal_id}/reject"[^>]*>(.*?)</form>',
                         page.text)
        assert form, "the journal is on the first page (the oldest)"
        key = re.search(r'name="idempotency_key" value="([^"]+)"', form.group(1))
        assert key
        data = {"csrf_token": csrf_from(page.text), "note": "pièce manquante",
                "idempotency_key": html.unescape(key.group(1))}
        first = await checker.post(f"/accounting/journals/{journal_id}/reject", data=data)
        again = await checker.post(f"/accounting/journals/{journal_id}/reject", data=data)
        assert first.status_code == again.status_code == 303   # the first answer again
        assert "Écriture rejetée" in text_of(await checker.get(again.headers["location"]))
    calls = [c for c in fake_state.posts("payments")
             if c.path == f"/v1/journals/{journal_id}/reject"]
    assert [c.body["idempotency_key"] for c in calls] == [data["idempotency_key"]] * 2


async def test_a_period_close_submitted_twice_is_one_close_under_one_key(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    page = await signed_in.get("/accounting/periods")
    key = re.search(r'id="close-period".*?name="idempotency_key" value="([^"]+)"', page.text,
                    re.S)
    assert key
    other = await signed_in.get("/accounting/periods")
    assert key.group(1) not in other.text, "each rendered form carries its own key"
    data = {"csrf_token": csrf_from(page.text), "period": "2025-07",
            "idempotency_key": html.unescape(key.group(1))}
    first = await signed_in.post("/accounting/periods/close", data=data)
    again = await signed_in.post("/accounting/periods/close", data=data)
    assert first.status_code == again.status_code == 303
    calls = [c for c in fake_state.posts("payments") if c.path == "/v1/periods/2025-07/close"]
    assert [c.body["idempotency_key"] for c in calls] == [data["idempotency_key"]] * 2
    assert [p["period"] for p in fake_state.ops.closed_periods].count("2025-07") == 1
    replies = [v for (scope, k), v in fake_state.ops.replies.items()
               if scope == "period-close:2025-07"]
    assert [status for status, _ in replies] == [201]   # the second got the first answer
