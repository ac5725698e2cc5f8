"""Lists an operator works through page by page, with other people's data already there."""

from __future__ import annotations

import html
import re
import uuid

import httpx

from tests.console.conftest import crowd, csrf_from
from tests.console.fake_platform import State

NEXT = re.compile(r'<a [^>]*rel="next"[^>]*href="([^"]+)"|<a [^>]*href="([^"]+)"[^>]*rel="next"')


def next_link(page: str) -> str | None:
    found = NEXT.search(page)
    if not found:
        return None
    return html.unescape(found.group(1) or found.group(2))


def cards(page: str) -> dict[str, str]:
    """Each application card on an approvals page, by loan id."""
    parts = re.split(r'(?=<section class="section approval")', page)
    out = {}
    for part in parts[1:]:
        loan = re.search(r'data-loan="([^"]+)"', part)
        assert loan
        out[loan.group(1)] = part
    return out


async def walk_queue(client: httpx.AsyncClient, start: str = "/approvals",
                     max_pages: int = 50) -> tuple[dict[str, str], int]:
    """Follow "next page" from the first page to the last; every card seen, and the pages."""
    seen: dict[str, str] = {}
    url: str | None = start
    pages = 0
    while url is not None:
        pages += 1
        assert pages <= max_pages, "the queue's next page never ends"
        resp = await client.get(url)
        assert resp.status_code == 200, resp.text
        here = cards(resp.text)
        assert not set(here) & set(seen), "a page repeats applications already shown"
        seen.update(here)
        url = next_link(resp.text)
    return seen, pages


async def test_the_operator_reaches_every_waiting_application_and_its_preview(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    mine = crowd(fake_state, 150, principal="7777.00")
    seen, pages = await walk_queue(signed_in)
    assert pages >= 7   # 150 of ours, plus whatever else was waiting, 25 a page
    waiting = {i for i, x in fake_state.loans.items() if x["status"] == "submitted"}
    assert set(seen) == waiting
    for loan_id in mine:
        card = seen[loan_id]
        assert "7\u202f777,00 MAD" in html.unescape(card)
        assert 'class="preview"' in card, f"{loan_id} has no schedule preview"
        assert "635,00" in card
    # the last one the operator reaches can be acted on from where it is shown
    last = mine[-1]
    assert f'action="/approvals/{last}/approve"' in seen[last]


async def test_an_application_is_found_by_its_client_among_hundreds(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    crowd(fake_state, 30)
    target = crowd(fake_state, 1, principal="1234.00")[0]
    client_id = fake_state.loans[target]["client_id"]
    resp = await signed_in.get("/approvals", params={"client_id": client_id})
    assert list(cards(resp.text)) == [target]
    assert 'class="preview"' in cards(resp.text)[target]
    assert next_link(resp.text) is None


async def test_a_refusal_on_a_later_page_is_shown_beside_its_application(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    crowd(fake_state, 30)
    first = await signed_in.get("/approvals")
    second_url = next_link(first.text)
    assert second_url
    second = await signed_in.get(second_url)
    loan_id = next(iter(cards(second.text)))
    fake_state.loans[loan_id]["submitted_by"] = "amina"   # the signed-in operator made it
    after = re.search(r'after=([^&"]+)', second_url)
    assert after
    resp = await signed_in.post(f"/approvals/{loan_id}/approve",
                                data={"csrf_token": csrf_from(second.text),
                                      "after": html.unescape(after.group(1)), "client_id": ""})
    assert resp.status_code == 409
    card = cards(resp.text)[loan_id]
    assert 'role="alert"' in card and "maker-checker" in card
    assert set(cards(resp.text)) >= set(cards(second.text)), "the operator stays on the page"


async def test_a_preview_is_one_click_away_when_it_could_not_be_drawn(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = crowd(fake_state, 1)[0]
    client_id = fake_state.loans[loan_id]["client_id"]
    schedule = fake_state.schedules.pop(loan_id)
    resp = await signed_in.get("/approvals", params={"client_id": client_id})
    card = cards(resp.text)[loan_id]
    assert 'class="preview"' not in card
    assert f'href="/approvals/{loan_id}/preview"' in card
    fake_state.schedules[loan_id] = schedule
    preview = await signed_in.get(f"/approvals/{loan_id}/preview")
    assert preview.status_code == 200
    assert f'data-preview="{loan_id}"' in preview.text
    assert preview.text.count("635,00") == 4   # every installment, not only the first ones


async def test_collections_and_payments_page_with_the_services_cursors(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    tag = uuid.uuid4().hex[:6]
    fake_state.installments_due = {
        "date": "2026-12-01", "currency": "MAD", "totals": {"amount_due": "9999.00"},
        "items": [{"loan_id": f"L-{tag}", "client_id": None, "installment_number": 1,
                   "due_date": "2026-12-01", "amount_due": "100.00", "status": "due"}],
        "next_cursor": f"cur-{tag}"}
    try:
        resp = await signed_in.get("/collections", params={"date": "2026-12-01"})
        link = next_link(resp.text)
        assert link is not None and f"cursor=cur-{tag}" in link
        await signed_in.get(link)
        sent = [c.body for c in fake_state.calls if c.path == "/v1/installments/due"]
        assert sent[-1]["cursor"] == f"cur-{tag}"
    finally:
        fake_state.installments_due = None


HELD_NEXT = re.compile(r'id="held-next" href="([^"]+)"')


async def test_held_refunds_are_paged_oldest_first_to_the_last_one(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    ids = [str(uuid.uuid4()) for _ in range(120)]
    fake_state.held_refunds = [
        {"payment_id": payment_id, "loan_id": "L-x", "amount": "10.00",
         "received_at": f"2026-12-01T10:{n // 60:02d}:{n % 60:02d}+00:00", "retries": 0,
         "msisdn": "+212600000000", "failure_reason": "wallet closed",
         "last_payout_id": None, "failed_at": None}
        for n, payment_id in reversed(list(enumerate(ids)))]
    try:
        url: str | None = "/payments?date=2026-12-01"
        seen: list[str] = []
        pages = 0
        while url:
            pages += 1
            assert pages <= 10, "the held refunds' next page never ends"
            resp = await signed_in.get(url)
            assert resp.status_code == 200
            assert 'data-truncated="payments"' not in resp.text
            seen += re.findall(r'data-held-refund="([^"]+)"', resp.text)
            found = HELD_NEXT.search(resp.text)
            url = html.unescape(found.group(1)) if found else None
        assert seen == ids   # oldest first, every one once, past the first page
        assert pages == 3
        asked = [c.body for c in fake_state.calls if c.path == "/v1/refunds/held"]
        assert asked[-1]["cursor"] and "date=2026-12-01" in html.unescape(resp.text)
    finally:
        fake_state.held_refunds = None
