"""The client and loan pages answer 404 when the service says the client or loan is not
there — which is also what clients and loans say for another office's (or another
partner's) — with the not-found panel; the client page shows its office and loan officer
by name; the header and the makers and checkers of requests show the signed-in operator's
login name instead of the token's subject."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import jwt

from console.app import create_app
from console.oidc import SESSION_COOKIE, Tokens
from shared.auth import ROLE_SCOPES
from tests.console.conftest import console_settings, sign_in
from tests.console.fake_platform import State
from tests.console.operators import console_as
from tests.console.test_pages import text_of
from tests.console.test_savings_org_pages import org_request
from tests.identity import issuer

NOT_FOUND_PANEL = 'class="panel problem" role="alert" data-status="404"'


def a_client(state: State, **extra: object) -> str:
    client_id = f"C-{uuid.uuid4().hex[:10]}"
    state.clients[client_id] = {"id": client_id, "full_name": f"Fatima {client_id}",
                                "phone": "+212600000001", "kyc_status": "verified", **extra}
    return client_id


def row(html: str, attribute: str, value: str) -> str:
    found = re.search(rf'<tr {attribute}="{re.escape(value)}">(.*?)</tr>', html, re.S)
    assert found, f"no row {attribute}={value}"
    return found.group(1)


async def test_a_client_the_service_does_not_show_answers_404_with_its_panel(
        fake_services: dict[str, str], fake_state: State) -> None:
    own = a_client(fake_state)
    async with console_as(fake_services, fake_state, "amina") as console:
        shown = await console.get(f"/clients/{own}")
        missing = await console.get(f"/clients/C-{uuid.uuid4().hex[:10]}")
    assert shown.status_code == 200 and f"Fatima {own}" in text_of(shown)
    assert missing.status_code == 404, missing.text
    assert NOT_FOUND_PANEL in missing.text
    assert 'id="client-office"' not in missing.text


async def test_a_loan_the_service_does_not_show_answers_404_with_its_panel(
        fake_services: dict[str, str], fake_state: State) -> None:
    loan_id = next(iter(fake_state.loans))
    async with console_as(fake_services, fake_state, "amina") as console:
        shown = await console.get(f"/loans/{loan_id}")
        missing = await console.get(f"/loans/L-{uuid.uuid4().hex[:12]}")
    assert shown.status_code == 200 and 'id="schedule"' in shown.text
    assert missing.status_code == 404, missing.text
    assert NOT_FOUND_PANEL in missing.text and 'id="schedule"' not in missing.text


async def test_the_client_page_shows_its_office_and_loan_officer_by_name(
        fake_services: dict[str, str], fake_state: State) -> None:
    branch, officer = f"b-{uuid.uuid4().hex[:6]}", f"st-{uuid.uuid4().hex[:6]}"
    fake_state.ops.offices.append({
        "id": branch, "kind": "branch", "name": "Agence Tiznit", "parent_id": "head",
        "path": f"head/{branch}", "status": "open", "opened_by": "hq", "created_at": None,
        "updated_at": None})
    fake_state.ops.staff.append({
        "id": officer, "full_name": "Samir Alami", "role": "loan_officer",
        "office_id": branch, "office_path": f"head/{branch}", "active": True,
        "created_by": "hq", "created_at": None, "updated_at": None})
    placed = a_client(fake_state, office_id=branch, office_path=f"head/{branch}",
                      officer_id=officer)
    # an office clients does not name (closed since, or out of reach): its id
    unnamed = a_client(fake_state, office_id="b-gone", office_path="head/b-gone",
                       officer_id=None)
    async with console_as(fake_services, fake_state, "amina") as console:
        page = await console.get(f"/clients/{placed}")
        other = await console.get(f"/clients/{unnamed}")
    assert page.status_code == 200 and other.status_code == 200
    office = re.search(r'id="client-office">(.*?)</div>', page.text, re.S)
    officer_kv = re.search(r'id="client-officer">(.*?)</div>', page.text, re.S)
    assert office and "Agence Tiznit" in office.group(1) and branch in office.group(1)
    assert f"office_id={branch}" in office.group(1)
    assert officer_kv and "Samir Alami" in officer_kv.group(1)
    assert officer in officer_kv.group(1)
    gone = re.search(r'id="client-office">(.*?)</div>', other.text, re.S)
    assert gone and "b-gone" in gone.group(1)
    nobody = re.search(r'id="client-officer">(.*?)</div>', other.text, re.S)
    assert nobody and "—" in nobody.group(1)


async def test_the_header_and_the_operators_requests_show_the_login_name(
        fake_services: dict[str, str], fake_state: State) -> None:
    sub, other = str(uuid.uuid4()), str(uuid.uuid4())
    name = f"nadia.{sub[:6]}"
    token = issuer().mint(sub=sub, scopes=ROLE_SCOPES["operator"],
                          extra={"preferred_username": name})
    mine = {**org_request("reassignment", sub, 1), "requested_at": "2020-01-01T08:00:00+00:00"}
    theirs = {**org_request("reassignment", other, 2),
              "requested_at": "2020-01-01T08:01:00+00:00"}
    fake_state.ops.requests.extend([mine, theirs])
    app = create_app(console_settings(fake_services))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console.test") as browser:
        assert (await sign_in(browser, token)).status_code == 303
        page = await browser.get("/organisation/requests?kind=reassignments")
    assert page.status_code == 200
    header = re.search(r'<span class="operator"[^>]*>(.*?)</span>', page.text)
    assert header and header.group(1) == name
    assert name in row(page.text, "data-request", str(mine["id"]))
    assert sub not in row(page.text, "data-request", str(mine["id"]))
    # another operator's request: the services record the subject only
    assert other in row(page.text, "data-request", str(theirs["id"]))


@contextlib.asynccontextmanager
async def signed_in_with(fake_services: dict[str, str], tokens: Tokens
                         ) -> AsyncIterator[httpx.AsyncClient]:
    """A browser whose console session holds ``tokens``, as after the provider's login."""
    app = create_app(console_settings(fake_services))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console.test") as browser:
        browser.cookies.set(SESSION_COOKIE, app.state.sessions.open(tokens))
        yield browser


def id_token(sub: str, **claims: str) -> str:
    test_issuer = issuer()
    signer = test_issuer.keys[0]
    return jwt.encode({"iss": test_issuer.issuer, "sub": sub, "aud": "noria-console",
                       "exp": int(time.time()) + 3600, **claims}, signer.private,
                      algorithm="RS256", headers={"kid": signer.kid})


async def test_without_a_name_in_the_access_token_the_id_tokens_name_is_shown(
        fake_services: dict[str, str]) -> None:
    sub = str(uuid.uuid4())
    access = issuer().mint(sub=sub, scopes=ROLE_SCOPES["operator"])
    now = time.time()
    for claims, shown in (({"preferred_username": "youssef"}, "youssef"),
                          ({"name": "Youssef Idrissi"}, "Youssef Idrissi"),
                          ({}, sub)):
        tokens = Tokens(access=access, refresh=None, id_token=id_token(sub, **claims),
                        access_expires=now + 3600, started=now)
        async with signed_in_with(fake_services, tokens) as browser:
            page = await browser.get("/clients")
        assert page.status_code == 200, page.text
        header = re.search(r'<span class="operator"[^>]*>(.*?)</span>', page.text)
        assert header and header.group(1) == shown, claims
