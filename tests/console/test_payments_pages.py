"""Due today from loans, the day's payments, held refunds (retry) and the replay log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.console.conftest import csrf_from
from tests.console.fake_platform import State
from tests.console.operators import console_as
from tests.console.test_pages import text_of

DAY = "2026-11-29"


@pytest.fixture(autouse=True)
def endpoints_off_afterwards(fake_state: State) -> Iterator[None]:
    yield
    fake_state.installments_due = None
    fake_state.payments_day = None
    fake_state.held_refunds = None
    fake_state.replays.clear()
    fake_state.refund_retry_refusal = None


def collections_day(count: int, amount: str) -> dict[str, object]:
    return {"date": DAY, "timezone": "UTC", "items": [],
            "totals": {"collection": {"count": count, "amount": amount}}, "next_cursor": None}


async def test_due_today_comes_from_loans_installments_due(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    client_id = f"cl-{uuid.uuid4().hex[:6]}"
    fake_state.clients[client_id] = {"id": client_id, "full_name": "Fatima Zahra",
                                     "phone": "+212612340001"}
    fake_state.installments_due = {"items": [
        {"loan_id": "ln-due-1", "client_id": client_id, "partner_id": "p",
         "installment_number": 3, "due_date": DAY, "amount_due": "512.40", "status": "due"},
        {"loan_id": "ln-due-2", "client_id": client_id, "partner_id": "p",
         "installment_number": 1, "due_date": DAY, "amount_due": "100.00", "status": "paid"}],
        "totals": {"count": 2, "amount_due": "612.40"}, "next_cursor": None}
    fake_state.payments_day = collections_day(4, "1250.00")
    page = await signed_in.get("/collections", params={"date": DAY})
    body = text_of(page)
    assert page.status_code == 200
    assert "data-unavailable" not in page.text  # nothing derived, nothing missing
    assert "ln-due-1" in body and "Fatima Zahra" in body and "+212612340001" in body
    assert "ln-due-2" not in body  # paid: not among the unpaid clients
    assert "612,40 MAD" in body  # loans' total for the day
    assert 'data-figure="received">1 250,00 MAD' in body.replace("\u202f", " ")
    asked = [c for c in fake_state.calls if c.path == "/v1/installments/due"]
    assert asked[-1].body["date"] == DAY
    listing = [c for c in fake_state.calls if c.path == "/v1/payments"]
    assert listing[-1].body["kind"] == "collection" and listing[-1].body["date"] == DAY


async def test_without_installments_due_the_page_derives_and_says_so(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = f"ln-{uuid.uuid4().hex[:6]}"
    fake_state.loans[loan_id] = {"id": loan_id, "client_id": "", "status": "active",
                                 "outstanding": "900.00", "days_in_arrears": 0,
                                 "next_due": {"installment": 2, "due_date": DAY,
                                              "amount": "300.00"}}
    try:
        page = await signed_in.get("/collections", params={"date": DAY, "lang": "en"})
    finally:
        del fake_state.loans[loan_id]
    body = text_of(page)
    assert 'data-unavailable="loans"' in page.text and "GET /v1/installments/due" in body
    assert "next installment" in body.lower() and loan_id in body
    # the day's payments are not offered either: said so, not made up
    assert 'data-unavailable="payments"' in page.text and "GET /v1/payments" in body


async def test_the_payments_page_lists_the_days_collections_with_totals(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    fake_state.payments_day = {**collections_day(2, "750.00"), "items": [
        {"id": "pay-1", "kind": "collection", "status": "posted", "amount": "500.00",
         "loan_id": "ln-a", "msisdn": "+212600000001", "provider": "sim",
         "at": f"{DAY}T09:00:00+00:00", "reason": None},
        {"id": "pay-2", "kind": "collection", "status": "refund_failed", "amount": "250.00",
         "loan_id": "ln-b", "msisdn": "+212600000002", "provider": "sim",
         "at": f"{DAY}T10:00:00+00:00", "reason": "unknown_loan"}]}
    fake_state.held_refunds = []
    page = await signed_in.get("/payments", params={"date": DAY})
    body = text_of(page)
    assert 'data-payment="pay-1"' in page.text and 'data-payment="pay-2"' in page.text
    assert "+212600000002" in body and "unknown_loan" in body
    assert "750,00 MAD" in body.replace("\u202f", " ")
    assert "Aucun remboursement en attente." in body


async def test_a_held_refund_retry_is_proposed_by_one_operator_and_approved_by_another(
        signed_in: httpx.AsyncClient, fake_services: dict[str, str],
        fake_state: State) -> None:
    payment_id = str(uuid.uuid4())
    last_payout = str(uuid.uuid4())
    fake_state.payments_day = collections_day(0, "0.00")
    fake_state.held_refunds = [{
        "payment_id": payment_id, "loan_id": "ln-h", "amount": "200.00",
        "msisdn": "+212611111111", "failure_reason": "refund payout failed (rejected)",
        "retries": 1, "received_at": f"{DAY}T08:00:00+00:00", "failed_at": None,
        "last_payout_id": last_payout}]
    page = await signed_in.get("/payments", params={"date": DAY, "lang": "en"})
    body = text_of(page)
    assert f'data-held-refund="{payment_id}"' in page.text
    assert "Refunds held for review" in body and "refund payout failed" in body
    assert f'data-retry-proposal="{payment_id}"' not in page.text  # nothing proposed yet

    without = await signed_in.post(f"/refunds/{payment_id}/retry", data={"note": "x"})
    assert without.status_code == 403
    assert not [c for c in fake_state.posts("payments") if payment_id in c.path]

    form = {"csrf_token": csrf_from(page.text), "note": "wallet reopened",
            "idempotency_key": f"k-{payment_id}", "back": f"/payments?date={DAY}"}
    resp = await signed_in.post(f"/refunds/{payment_id}/retry", data=form)
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/payments?date={DAY}&flash=refund_retry_proposed"
    [call] = [c for c in fake_state.posts("payments") if payment_id in c.path]
    assert call.path == f"/v1/refunds/{payment_id}/retry" and call.sub == "amina"
    assert call.body == {"note": "wallet reopened", "idempotency_key": f"k-{payment_id}"}
    after = await signed_in.get(resp.headers["location"])
    shown = text_of(after)
    # not "retried": a proposal waiting for a second operator, with an approve button
    assert "another operator must approve it" in shown and "Refund retried" not in shown
    assert f'data-retry-proposal="{payment_id}"' in after.text
    assert "Retry proposed by amina" in shown and "wallet reopened" in shown
    assert f'action="/refunds/{payment_id}/retry/approve"' in after.text

    # its maker cannot approve it: payments answers 403, and the page says why
    mine = await signed_in.post(f"/refunds/{payment_id}/retry/approve",
                                data={"csrf_token": csrf_from(after.text),
                                      "back": f"/payments?date={DAY}"})
    assert mine.status_code == 403
    assert "another operator must" in text_of(mine)

    async with console_as(fake_services, fake_state, "youssef") as checker:
        seen = await checker.get("/payments", params={"date": DAY, "lang": "en"})
        assert "Retry proposed by amina" in text_of(seen)
        approved = await checker.post(
            f"/refunds/{payment_id}/retry/approve",
            data={"csrf_token": csrf_from(seen.text), "note": "checked",
                  "idempotency_key": f"a-{payment_id}", "back": f"/payments?date={DAY}"})
        assert approved.status_code == 303
        assert approved.headers["location"].endswith("flash=refund_retry_approved")
    approvals = [c for c in fake_state.posts("payments")
                 if c.path == f"/v1/refunds/{payment_id}/retry/approve"]
    assert [c.sub for c in approvals] == ["amina", "youssef"]
    assert approvals[-1].body == {"note": "checked", "idempotency_key": f"a-{payment_id}"}

    fake_state.refund_retry_refusal = "the refund is completed, not held for review"
    refused = await signed_in.post(f"/refunds/{payment_id}/retry", data=form)
    assert refused.status_code == 409
    assert "not held for review" in text_of(refused)


async def test_the_dead_letters_page_shows_who_replayed_what_and_when(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    fake_state.replays["loans"] = [
        {"id": 11, "dead_letter_id": 4, "consumer": "loans", "topic": "payments.events",
         "message_type": "DisbursementCompleted", "replayed_by": "youssef",
         "replayed_at": "2026-11-29T10:00:00+00:00", "outcome": "applied", "detail": None}]
    fake_state.replays["payments"] = [
        {"id": 3, "dead_letter_id": 9, "consumer": "payments", "topic": "loans.events",
         "message_type": "RepaymentApplied", "replayed_by": "amina",
         "replayed_at": "2026-11-29T11:00:00+00:00", "outcome": "dead_letter",
         "detail": "InvalidInput: amount"}]
    page = await signed_in.get("/dead-letters", params={"lang": "en"})
    body = text_of(page)
    audit = body[body.index('id="replay-audit"'):]
    assert audit.index('data-replay="payments-3"') < audit.index('data-replay="loans-11"')
    assert "youssef" in audit and "amina" in audit and "InvalidInput: amount" in audit
    assert "Replay log" in body
