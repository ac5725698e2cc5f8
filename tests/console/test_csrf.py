"""Every form that changes something carries a double-submit CSRF token."""

from __future__ import annotations

import uuid

import httpx
from fastapi.routing import APIRoute

from console.session import CSRF_COOKIE, verify_csrf
from console.views import (
    accounting,
    auth,
    business,
    clients,
    loans,
    ops,
    organisation,
    payouts,
    recon_alerts,
    savings,
)
from tests.console.conftest import csrf_from, operator_token
from tests.console.fake_platform import State


def submitted_loan(state: State, submitted_by: str = "maker") -> str:
    loan_id = f"L-{uuid.uuid4().hex[:8]}"
    client_id = f"C-{uuid.uuid4().hex[:8]}"
    state.clients[client_id] = {"id": client_id, "full_name": "Fatima Zahra Alaoui",
                                "phone": "+212612345678", "kyc_status": "verified",
                                "national_id": "AB123456", "onboarded_by": "agent"}
    state.loans[loan_id] = {
        "id": loan_id, "client_id": client_id, "product_id": "P-weekly", "status": "submitted",
        "principal": "5000.00", "term": 12, "submitted_by": submitted_by, "decided_by": None,
        "outstanding": {"principal": "5000.00", "interest": "600.00", "fees": "0.00",
                        "penalties": "0.00", "total": "5600.00"},
        "days_in_arrears": 0, "next_due": None}
    state.schedules[loan_id] = [
        {"number": n, "due_date": f"2026-12-{n:02d}", "principal": "416.67",
         "interest": "50.00", "fees": "0.00", "penalties": "0.00", "total": "466.67",
         "paid": "0.00", "status": "pending"} for n in range(1, 13)]
    return loan_id


def test_every_post_route_checks_the_csrf_token() -> None:
    modules = (auth, business, clients, loans, ops, payouts, recon_alerts, accounting, savings,
               organisation)
    routes = [r for module in modules for r in module.router.routes]
    posts = [r for r in routes if isinstance(r, APIRoute) and "POST" in r.methods]
    assert len(posts) >= 7
    for route in posts:
        calls = [d.call for d in route.dependant.dependencies]
        assert verify_csrf in calls, route.path


async def test_an_approval_without_the_csrf_token_reaches_no_service(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = submitted_loan(fake_state)
    resp = await signed_in.post(f"/approvals/{loan_id}/approve", data={})
    assert resp.status_code == 403
    assert 'data-forbidden="csrf"' in resp.text
    assert not [c for c in fake_state.posts("loans") if loan_id in c.path]
    assert fake_state.loans[loan_id]["status"] == "submitted"


async def test_a_forged_csrf_token_is_refused(signed_in: httpx.AsyncClient,
                                              fake_state: State) -> None:
    loan_id = submitted_loan(fake_state)
    resp = await signed_in.post(f"/approvals/{loan_id}/approve",
                                data={"csrf_token": "guessed-by-another-site"})
    assert resp.status_code == 403
    assert fake_state.loans[loan_id]["status"] == "submitted"


async def test_a_cross_site_post_without_the_cookie_is_refused(
        fake_services: dict[str, str], fake_state: State, signed_in: httpx.AsyncClient) -> None:
    loan_id = submitted_loan(fake_state)
    page = await signed_in.get("/approvals")
    token = csrf_from(page.text)
    signed_in.cookies.delete(CSRF_COOKIE)
    resp = await signed_in.post(f"/approvals/{loan_id}/approve", data={"csrf_token": token})
    assert resp.status_code == 403
    assert fake_state.loans[loan_id]["status"] == "submitted"


async def test_the_page_token_approves_with_the_operators_own_identity(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = submitted_loan(fake_state)
    page = await signed_in.get("/approvals")
    resp = await signed_in.post(f"/approvals/{loan_id}/approve",
                                data={"csrf_token": csrf_from(page.text)})
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/loans/{loan_id}?flash=approved"
    approvals = [c for c in fake_state.posts("loans") if c.path.endswith(f"{loan_id}/approve")]
    assert [c.sub for c in approvals] == ["amina"]
    assert fake_state.loans[loan_id]["status"] == "approved"


async def test_htmx_requests_may_send_the_token_as_a_header(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = submitted_loan(fake_state)
    page = await signed_in.get("/approvals")
    resp = await signed_in.post(f"/approvals/{loan_id}/approve",
                                headers={"X-CSRF-Token": csrf_from(page.text),
                                         "HX-Request": "true"})
    assert resp.status_code == 204
    assert resp.headers["HX-Redirect"] == f"/loans/{loan_id}?flash=approved"


async def test_login_itself_needs_the_csrf_token(browser_client: httpx.AsyncClient) -> None:
    resp = await browser_client.post("/login", data={"token": operator_token()})
    assert resp.status_code == 403
