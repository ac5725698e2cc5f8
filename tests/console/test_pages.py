"""What each view shows from the services' answers — and what it says when they can't."""

from __future__ import annotations

import datetime as dt
import html
import uuid

import httpx

from console.app import create_app
from tests.console.conftest import console_settings, csrf_from, operator_token, sign_in
from tests.console.fake_platform import State
from tests.console.test_csrf import submitted_loan


def text_of(resp: httpx.Response) -> str:
    return html.unescape(resp.text)


async def test_portfolio_shows_outstanding_par_and_buckets(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    fake_state.portfolio = {
        "currency": "MAD", "as_of_business_date": "2026-11-28", "loans_active": 41,
        "outstanding_principal": "182500.00",
        "par": {"par1": {"principal": "12000.00", "ratio": "0.0658"},
                "par30": {"principal": "4000.00", "ratio": "0.0219"},
                "par90": {"principal": "0.00", "ratio": "0.0000"}},
        "arrears_buckets": {"current": {"loans": 35, "principal": "170500.00"},
                            "1-30": {"loans": 4, "principal": "8000.00"},
                            "31-60": {"loans": 2, "principal": "4000.00"},
                            "61-90": {"loans": 0, "principal": "0.00"},
                            "90+": {"loans": 0, "principal": "0.00"}},
        "last_snapshot": None,
    }
    page = await signed_in.get("/?lang=en")
    body = text_of(page)
    assert "182,500.00 MAD" in body
    assert "6.58%" in body and "2.19%" in body
    assert "8,000.00 MAD" in body
    assert "<svg" in page.text
    # loans has no history endpoint: the trend says so instead of drawing anything
    assert 'data-unavailable="loans"' in page.text
    assert "GET /v1/portfolio/history" in body


async def test_the_approvals_queue_shows_client_amount_product_and_schedule(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = submitted_loan(fake_state)
    client_id = fake_state.loans[loan_id]["client_id"]
    page = await signed_in.get("/approvals", params={"client_id": client_id})
    body = text_of(page)
    assert body.count("data-loan=") == 1   # the search found this client's application only
    section = body[body.index(f'data-loan="{loan_id}"'):]
    assert "Fatima Zahra Alaoui" in section
    assert "+212612345678" in section
    assert "5\u202f000,00 MAD" in section
    assert "P-weekly" in section
    assert "466,67" in section
    assert "8 échéances de plus" in section


async def test_maker_checker_refusal_is_shown_with_the_services_explanation(
        browser_client: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = submitted_loan(fake_state, submitted_by="samir")
    await sign_in(browser_client, operator_token("samir"))
    page = await browser_client.get("/approvals")
    resp = await browser_client.post(f"/approvals/{loan_id}/approve",
                                     data={"csrf_token": csrf_from(page.text)})
    assert resp.status_code == 409
    body = text_of(resp)
    section = body[body.index(f'data-loan="{loan_id}"'):]
    assert 'role="alert"' in section
    assert "maker-checker: the operator who created the application cannot approve it" in section
    assert "approved_by" in section
    assert fake_state.loans[loan_id]["status"] == "submitted"


async def test_a_rejection_needs_a_reason_and_sends_it(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = submitted_loan(fake_state)
    page = await signed_in.get("/approvals")
    csrf = csrf_from(page.text)
    empty = await signed_in.post(f"/approvals/{loan_id}/reject",
                                 data={"csrf_token": csrf, "reason": "  "})
    assert empty.status_code == 422
    assert "reason" in text_of(empty)
    done = await signed_in.post(f"/approvals/{loan_id}/reject",
                                data={"csrf_token": csrf, "reason": "revenus insuffisants"})
    assert done.status_code == 303
    assert fake_state.loans[loan_id]["status"] == "rejected"
    assert fake_state.loans[loan_id]["decision_reason"] == "revenus insuffisants"


async def test_loan_detail_shows_schedule_saga_timeline_ledger_and_sms(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = submitted_loan(fake_state)
    fake_state.loans[loan_id]["status"] = "active"
    saga_id = f"S-{uuid.uuid4().hex[:8]}"
    fake_state.sagas[saga_id] = {
        "id": saga_id, "type": "disbursement", "loan_id": loan_id, "state": "completed",
        "current_step": "done", "deadline": None, "attempts": 1,
        "data": {"amount": "5000.00", "msisdn": "+212612345678",
                 "provider_reference": "SIM-778"},
        "created_at": "2026-11-29T09:00:00+00:00", "updated_at": "2026-11-29T09:00:05+00:00",
        "timeline": [{"at": "2026-11-29T09:00:01+00:00", "event": "CreditReserved",
                      "from_state": "reserving_credit", "to_state": "disbursing",
                      "detail": ""},
                     {"at": "2026-11-29T09:00:05+00:00", "event": "DisbursementCompleted",
                      "from_state": "disbursing", "to_state": "completed", "detail": ""}]}
    fake_state.statements[f"portfolio:{loan_id}"] = {
        "account": {"id": f"portfolio:{loan_id}", "balance": "5000.00"},
        "lines": [{"line_id": 1, "kind": "disbursement", "side": "debit", "amount": "5000.00",
                   "balance_after": "5000.00", "memo": "payout", "posted_at": "2026-11-29"}]}
    fake_state.messages.append({
        "id": f"M-{uuid.uuid4().hex[:6]}", "client_id": "x", "loan_id": loan_id,
        "phone": "+212612345678", "language": "fr", "template": "loan_disbursed",
        "text": "Votre prêt de 5000,00 MAD a été versé.", "encoding": "GSM-7",
        "segments": 1, "status": "delivered", "provider": "smpp", "created_at": "2026-11-29"})
    page = await signed_in.get(f"/loans/{loan_id}")
    body = text_of(page)
    assert 'id="schedule"' in page.text and "466,67" in body
    assert "CreditReserved" in body and "DisbursementCompleted" in body
    assert "SIM-778" in body
    assert 'id="ledger"' in page.text and "disbursement" in body
    assert "Votre prêt de 5000,00 MAD a été versé." in body
    assert 'hx-trigger="every 2s"' not in page.text  # active: no polling
    assert 'title="active">actif</span>' in page.text  # statuses in the page's language
    assert 'title="completed">terminée</span>' in page.text


async def test_an_approved_loan_polls_its_status_and_reloads_when_it_changes(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = submitted_loan(fake_state)
    fake_state.loans[loan_id]["status"] = "disbursing"
    page = await signed_in.get(f"/loans/{loan_id}")
    assert 'hx-trigger="every 2s"' in page.text
    same = await signed_in.get(f"/loans/{loan_id}/status?seen=disbursing")
    assert "HX-Refresh" not in same.headers
    fake_state.loans[loan_id]["status"] = "active"
    changed = await signed_in.get(f"/loans/{loan_id}/status?seen=disbursing")
    assert changed.headers["HX-Refresh"] == "true"
    assert 'data-status="active"' in changed.text


async def test_dead_letters_grouped_and_replayed_under_the_operators_name(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    base = {"consumer": "payments", "partition": 0, "key": "k", "message_type": "DisburseLoan",
            "error": "ValueError: boom", "created_at": "2026-11-29T08:00:00+00:00",
            "replayed_at": None, "replay_count": 0, "value_preview": "{}"}
    first_id, second_id = 9000 + len(fake_state.calls), 9500 + len(fake_state.calls)
    fake_state.dead_letters["payments"] = [
        {**base, "id": first_id, "topic": "payments.commands", "offset": 1,
         "reason": "handler_failed"},
        {**base, "id": second_id, "topic": "payments.commands", "offset": 2,
         "reason": "handler_failed"}]
    page = await signed_in.get("/dead-letters")
    body = text_of(page)
    assert "payments.commands" in body
    groups = body[body.index('id="dlq-groups"'):body.index("</table>",
                                                          body.index('id="dlq-groups"'))]
    assert "handler_failed" in groups and ">2<" in groups
    resp = await signed_in.post(f"/dead-letters/payments/{first_id}/replay",
                                data={"csrf_token": csrf_from(page.text)})
    assert resp.status_code == 303
    result = await signed_in.get(resp.headers["location"])
    assert f"payments#{first_id}" in text_of(result) and "applied" in text_of(result)
    replays = [c for c in fake_state.posts("payments") if c.path.endswith("/replay")]
    assert replays[-1].sub == "amina"
    assert f'data-dead-letter="payments-{first_id}"' not in result.text
    everything = await signed_in.post("/dead-letters/payments/replay-all",
                                      data={"csrf_token": csrf_from(result.text)})
    after = await signed_in.get(everything.headers["location"])
    assert "payments : 1 rejouée(s), 1 traitée(s)" in text_of(after)


async def test_client_lookup_by_phone_and_kyc_decision(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    client_id = f"C-{uuid.uuid4().hex[:8]}"
    phone = f"+2126{uuid.uuid4().int % 10**8:08d}"
    fake_state.clients[client_id] = {
        "id": client_id, "partner_id": "p-atlas", "full_name": "Youssef Benali",
        "national_id": "BK778899", "phone": phone, "date_of_birth": "1990-02-01",
        "language": "ar", "sms_consent": True, "region": "Souss-Massa",
        "kyc_status": "pending", "blocked": False, "onboarded_by": "agent"}
    fake_state.credit[client_id] = {"client_id": client_id, "credit_limit": "5000.00",
                                    "exposure": "0.00", "available": "5000.00"}
    found = await signed_in.get("/clients", params={"phone": phone})
    assert "Youssef Benali" in text_of(found)
    detail = await signed_in.get(f"/clients/{client_id}")
    assert 'id="kyc-form"' in detail.text
    assert "5\u202f000,00 MAD" in text_of(detail)
    resp = await signed_in.post(f"/clients/{client_id}/kyc",
                                data={"csrf_token": csrf_from(detail.text),
                                      "decision": "verified", "reason": ""})
    assert resp.status_code == 303
    assert fake_state.clients[client_id]["kyc_status"] == "verified"
    kyc_calls = [c for c in fake_state.posts("clients") if client_id in c.path]
    assert kyc_calls[-1].body == {"decision": "verified", "reason": None}


async def test_reconciliation_lists_the_unmatched_items(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    day = (dt.date(2026, 11, 1) + dt.timedelta(days=len(fake_state.calls) % 20)).isoformat()
    fake_state.reconciliation[("sim", day)] = {
        "provider": "sim", "date": day,
        "matched": [{"reference": "R1", "kind": "disbursement", "amount": "100.00"}],
        "amount_mismatch": [{"reference": "R2", "kind": "collection", "amount": "50.00",
                             "ledger_amount": "50.00", "provider_amount": "55.00"}],
        "ours_only": [], "theirs_only": [{"reference": "R3", "kind": "collection",
                                          "amount": "20.00"}],
        "summary": {"matched": 1, "amount_mismatch": 1, "ours_only": 0, "theirs_only": 1}}
    page = await signed_in.get("/reconciliation", params={"provider": "sim", "date": day})
    body = text_of(page)
    assert "R2" in body and "55,00 MAD" in body and "R3" in body
    assert "R1" not in body[body.index("Éléments non rapprochés"):]


async def test_a_day_with_thousands_unmatched_shows_the_first_and_counts_the_rest(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    day = (dt.date(2026, 10, 1) + dt.timedelta(days=len(fake_state.calls) % 20)).isoformat()
    theirs = [{"reference": f"T{n:05d}", "kind": "collection", "amount": "20.00"}
              for n in range(3000)]
    fake_state.reconciliation[("sim", day)] = {
        "provider": "sim", "date": day, "matched": [], "amount_mismatch": [],
        "ours_only": [], "theirs_only": theirs,
        "summary": {"matched": 0, "amount_mismatch": 0, "ours_only": 0, "theirs_only": 3000}}
    page = await signed_in.get("/reconciliation", params={"provider": "sim", "date": day})
    body = text_of(page)
    assert "T00000" in body and "T00199" in body and "T00200" not in body
    assert "et 2800 de plus" in body
    assert 'data-figure="theirs_only">3000<' in page.text


async def test_sms_stats_show_totals_encodings_and_opt_outs(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    fake_state.sms_stats = {
        "by_provider_language": [
            {"provider": "smpp", "language": "fr", "sent": 10, "delivered": 9, "failed": 1,
             "expired": 0, "queued": 0, "suppressed": 2, "segments": 12,
             "encodings": {"GSM-7": 12}},
            {"provider": "smpp", "language": "ar", "sent": 5, "delivered": 5, "failed": 0,
             "expired": 0, "queued": 1, "suppressed": 0, "segments": 10,
             "encodings": {"UCS-2": 6}}],
        "opt_outs": {"mo_stop": 3}, "languages": ["fr", "ar"]}
    page = await signed_in.get("/sms")
    assert 'data-stat="sent">15<' in page.text
    assert 'data-stat="segments">22<' in page.text
    assert 'data-stat="opt_outs">3<' in page.text
    assert "UCS-2" in page.text and "mo_stop" in page.text


async def test_a_missing_endpoint_is_named_not_faked(
        signed_in: httpx.AsyncClient) -> None:
    page = await signed_in.get("/payments")
    body = text_of(page)
    assert 'data-unavailable="payments"' in page.text
    assert "Non disponible depuis payments" in body and "GET /v1/payments" in body
    assert "Équilibrée" in body  # the trial balance it does have


async def test_a_service_that_does_not_answer_is_said_so(
        fake_services: dict[str, str]) -> None:
    urls = {**fake_services, "notifications": "http://127.0.0.1:9"}
    app = create_app(console_settings(urls))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console.test") as client:
        await sign_in(client, operator_token())
        page = await client.get("/sms")
        assert 'data-unreachable="notifications"' in page.text
        strip = await client.get("/fragments/health")
        assert 'class="health down" data-service="notifications"' in strip.text
        assert 'class="health up" data-service="loans"' in strip.text


async def test_dead_letters_can_be_narrowed_to_one_topic_and_reason(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    base = {"consumer": "notifications", "partition": 0, "key": None, "message_type": None,
            "error": "boom", "created_at": "2026-11-29T08:00:00+00:00", "replayed_at": None,
            "replay_count": 0, "value_preview": "{"}
    fake_state.dead_letters["notifications"] = [
        {**base, "id": 1, "offset": 1, "topic": "loans.events", "reason": "invalid_payload"},
        {**base, "id": 2, "offset": 2, "topic": "clients.events", "reason": "malformed"}]
    page = await signed_in.get("/dead-letters", params={
        "service": "notifications", "topic": "clients.events", "reason": "malformed"})
    assert 'data-dead-letter="notifications-2"' in page.text
    assert 'data-dead-letter="notifications-1"' not in page.text
    assert 'id="dlq-filter"' in page.text
    assert "invalid_payload" in page.text  # the summary still counts every group


async def test_the_loan_list_pages_through_the_services_cursor(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    client_id = f"C-{uuid.uuid4().hex[:8]}"
    ids = []
    for _ in range(101):
        loan_id = submitted_loan(fake_state)
        fake_state.loans[loan_id].update(client_id=client_id, status="closed")
        ids.append(loan_id)
    first = await signed_in.get("/loans", params={"client_id": client_id})
    shown = [i for i in ids if f'href="/loans/{i}"' in first.text]
    assert len(shown) == 100
    assert 'rel="next"' in first.text
    next_url = html.unescape(first.text.split('rel="next" href="')[1].split('"')[0])
    second = await signed_in.get(next_url)
    rest = [i for i in ids if f'href="/loans/{i}"' in second.text]
    assert sorted(shown + rest) == sorted(ids)
    assert 'rel="next"' not in second.text


async def test_the_saga_monitor_shows_payouts_in_doubt_with_their_age(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = submitted_loan(fake_state)
    saga_id = f"S-{uuid.uuid4().hex[:8]}"
    fake_state.sagas[saga_id] = {
        "id": saga_id, "type": "disbursement", "loan_id": loan_id, "state": "in_doubt",
        "current_step": "disburse", "deadline": None, "compensating": False, "failed": False,
        "attempts": 2, "data": {"amount": "5000.00", "reason": "payout in doubt: timeout"},
        "created_at": "2026-11-29T09:00:00+00:00", "updated_at": "2026-11-29T09:12:00+00:00",
        "in_doubt_since": "2026-11-29T09:12:00+00:00", "age_s": 93784.0, "timeline": []}
    page = await signed_in.get("/sagas")
    assert page.status_code == 200
    body = text_of(page)
    assert 'data-state="in_doubt"' in page.text
    assert 'id="oldest-in-doubt"' in page.text and saga_id in body
    assert "1 j 2 h" in body   # 93 784 s, in the page's language
    assert 'title="in_doubt">en doute</span>' in page.text
    only = await signed_in.get("/sagas", params={"state": "in_doubt", "lang": "en"})
    assert "1 d 2 h" in text_of(only) and "In doubt" in text_of(only)
