"""Payouts in doubt: the queue oldest first with ages, paged to the end, and a settlement
that takes two operators (the maker is refused by payments, and the page says so)."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import httpx

from tests.console.conftest import csrf_from
from tests.console.fake_platform import State
from tests.console.operators import console_as
from tests.console.test_pages import text_of
from tests.console.test_paging import next_link


def in_doubt(state: State, provider: str, hours_ago: float, kind: str = "disbursement",
             saga_id: str | None = None) -> str:
    payout_id = str(uuid.uuid4())
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)).isoformat()
    state.ops.payouts[payout_id] = {
        "payout_id": payout_id, "kind": kind, "saga_id": saga_id or str(uuid.uuid4()),
        "loan_id": f"ln-{payout_id[:6]}", "msisdn": "+212612345678", "amount": "5000.00",
        "currency": "MAD", "provider": provider, "status": "in_doubt",
        "provider_reference": None, "failure_reason": None, "resolved_by": None,
        "deadline": since, "created_at": since, "completed_at": None, "payment_id": None,
        "in_doubt_since": since, "account_id": None, "queries": 4,
        "reason": "provider did not answer"}
    return payout_id


async def test_the_queue_is_oldest_first_with_ages_and_pages_to_the_end(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    provider = f"mm-{uuid.uuid4().hex[:6]}"
    newest = in_doubt(fake_state, provider, 0.5)
    oldest = in_doubt(fake_state, provider, 50)
    middle = in_doubt(fake_state, provider, 3)
    crowd = [in_doubt(fake_state, provider, 1 + k / 100) for k in range(60)]
    page = await signed_in.get("/payouts/in-doubt", params={"provider": provider})
    body = text_of(page)
    assert page.status_code == 200
    order = re.findall(r'data-payout="([^"]+)"', page.text)
    assert order[0] == oldest and order[1] == middle  # the oldest first
    assert "2 j 2 h" in body  # 50 hours, in French by default
    seen = list(order)
    url = next_link(page.text)
    pages = 1
    while url:
        pages += 1
        more = await signed_in.get(url)
        assert more.status_code == 200
        seen += re.findall(r'data-payout="([^"]+)"', more.text)
        url = next_link(more.text)
    assert pages == 2 and len(seen) == len(set(seen))
    assert set(seen) == {newest, oldest, middle, *crowd}
    assert seen[-1] == newest
    listing = [c for c in fake_state.calls if c.path == "/v1/payouts/in-doubt"]
    assert all(c.body["provider"] == provider for c in listing[-2:])


async def test_a_settlement_takes_two_operators_and_the_maker_is_refused(
        signed_in: httpx.AsyncClient, fake_services: dict[str, str],
        fake_state: State) -> None:
    payout_id = in_doubt(fake_state, f"mm-{uuid.uuid4().hex[:6]}", 30)
    page = await signed_in.get(f"/payouts/{payout_id}")
    assert 'id="propose-settlement"' in page.text and "Paiement" in text_of(page)

    no_csrf = await signed_in.post(f"/payouts/{payout_id}/settlement",
                                   data={"outcome": "completed", "evidence": "x"})
    assert no_csrf.status_code == 403
    assert not [c for c in fake_state.posts("payments") if payout_id in c.path]

    csrf = csrf_from(page.text)
    missing = await signed_in.post(f"/payouts/{payout_id}/settlement", data={
        "csrf_token": csrf, "outcome": "completed", "evidence": "ticket 4411",
        "idempotency_key": "k1", "lang": "en"})
    assert missing.status_code == 422
    assert "provider_reference" in text_of(missing)
    assert "ticket 4411" in text_of(missing)  # what the operator typed stays in the form

    proposed = await signed_in.post(f"/payouts/{payout_id}/settlement", data={
        "csrf_token": csrf, "outcome": "completed", "evidence": "ticket 4411",
        "provider_reference": "SIM-4F0C", "idempotency_key": "k2"})
    assert proposed.status_code == 303
    assert proposed.headers["location"] == f"/payouts/{payout_id}?flash=settlement_proposed"
    call = [c for c in fake_state.posts("payments")
            if c.path == f"/v1/payouts/{payout_id}/settlement"][-1]
    assert call.sub == "amina" and call.body == {
        "outcome": "completed", "evidence": "ticket 4411", "provider_reference": "SIM-4F0C",
        "idempotency_key": "k2"}

    shown = await signed_in.get(proposed.headers["location"])
    body = text_of(shown)
    assert "Règlement proposé : un autre opérateur doit l'approuver." in body
    assert 'id="open-proposal"' in shown.text and "amina propose : payé" in body
    assert 'id="maker-note"' in shown.text and 'id="propose-settlement"' not in shown.text

    mine = await signed_in.post(f"/payouts/{payout_id}/settlement/approve",
                                data={"csrf_token": csrf_from(shown.text)})
    assert mine.status_code == 403
    assert "another operator must" in text_of(mine) and 'role="alert"' in mine.text
    assert fake_state.ops.payouts[payout_id]["status"] == "in_doubt"

    async with console_as(fake_services, fake_state, "youssef") as checker:
        seen = await checker.get(f"/payouts/{payout_id}", params={"lang": "en"})
        assert "amina proposes: paid" in text_of(seen)
        assert 'id="maker-note"' not in seen.text
        done = await checker.post(f"/payouts/{payout_id}/settlement/approve", data={
            "csrf_token": csrf_from(seen.text), "note": "matches the statement",
            "idempotency_key": "k3"})
        assert done.status_code == 303
        settled = await checker.get(done.headers["location"] + "&lang=en")
        body = text_of(settled)
        assert "Settlement approved and applied." in body
        audit = body[body.index('id="payout-audit"'):]
        assert audit.index("settlement proposed") < audit.index("settlement approved")
        assert "amina" in audit and "youssef" in audit
    assert fake_state.ops.payouts[payout_id]["status"] == "completed"


async def test_the_saga_monitor_links_an_in_doubt_saga_to_its_settlement(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    saga_id = f"S-{uuid.uuid4().hex[:8]}"
    payout_id = in_doubt(fake_state, "sim", 5, saga_id=saga_id)
    fake_state.sagas[saga_id] = {
        "id": saga_id, "type": "disbursement", "loan_id": "ln-doubt", "state": "in_doubt",
        "current_step": "disbursing", "deadline": None, "created_at": "2026-11-29T08:00:00Z",
        "updated_at": "2026-11-29T08:00:00Z", "in_doubt_since": "2026-11-29T08:00:00Z",
        "age_s": 18000, "data": {}}
    try:
        page = await signed_in.get("/sagas", params={"state": "in_doubt"})
        assert f'href="/payouts/{saga_id}"' in page.text
        payout = await signed_in.get(f"/payouts/{saga_id}")
        assert payout.status_code == 200
        assert f'action="/payouts/{payout_id}/settlement"' in payout.text
    finally:
        del fake_state.sagas[saga_id]
