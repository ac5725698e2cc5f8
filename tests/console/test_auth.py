"""Signing in: only an operator's valid token opens the console."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import httpx

from console.session import TOKEN_COOKIE
from shared.auth import ROLE_SCOPES
from tests.console.conftest import csrf_from, operator_token, sign_in
from tests.console.fake_platform import State
from tests.identity import LocalIssuer, mint_token
from tests.identity import issuer as test_issuer


def query_of(resp: httpx.Response) -> dict[str, list[str]]:
    return parse_qs(urlparse(resp.headers["location"]).query)


async def test_a_page_without_a_session_sends_the_browser_to_login(
        browser_client: httpx.AsyncClient) -> None:
    resp = await browser_client.get("/approvals?x=1")
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/login?")
    assert query_of(resp) == {"reason": ["signed_out"], "next": ["/approvals?x=1"]}


async def test_an_operator_token_signs_in_with_a_strict_httponly_cookie(
        browser_client: httpx.AsyncClient) -> None:
    resp = await sign_in(browser_client, operator_token("karim"), next_="/sagas")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/sagas"
    cookie = next(h for h in resp.headers.get_list("set-cookie")
                  if h.startswith(f"{TOKEN_COOKIE}="))
    attributes = cookie.lower()
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "max-age=" in attributes
    page = await browser_client.get("/sagas")
    assert page.status_code == 200
    assert "karim" in page.text


async def test_an_expired_token_is_refused_at_login(browser_client: httpx.AsyncClient) -> None:
    expired = mint_token(sub="old", scopes=ROLE_SCOPES["operator"],
                         ttl_s=60, now=time.time() - 3600)
    resp = await sign_in(browser_client, expired)
    assert resp.status_code == 401
    assert 'data-reason="expired"' in resp.text
    assert TOKEN_COOKIE not in browser_client.cookies


async def test_a_session_whose_token_expires_redirects_to_login(
        browser_client: httpx.AsyncClient) -> None:
    expired = mint_token(sub="old", scopes=ROLE_SCOPES["operator"],
                         ttl_s=60, now=time.time() - 3600)
    browser_client.cookies.set(TOKEN_COOKIE, expired)
    resp = await browser_client.get("/dead-letters")
    assert resp.status_code == 303
    assert query_of(resp) == {"reason": ["expired"], "next": ["/dead-letters"]}
    login = await browser_client.get(resp.headers["location"])
    assert "Votre session a expiré" in login.text


async def test_an_htmx_request_with_an_expired_session_moves_the_whole_page(
        browser_client: httpx.AsyncClient) -> None:
    expired = mint_token(sub="old", scopes=ROLE_SCOPES["operator"],
                         ttl_s=60, now=time.time() - 3600)
    browser_client.cookies.set(TOKEN_COOKIE, expired)
    resp = await browser_client.get("/fragments/health", headers={"HX-Request": "true"})
    assert resp.headers["HX-Redirect"].startswith("/login?reason=expired")


async def test_a_partner_token_is_refused_with_a_403_page(
        browser_client: httpx.AsyncClient) -> None:
    partner = mint_token(sub="agent-7", scopes=ROLE_SCOPES["partner"],
                         partner_id="p-atlas")
    resp = await sign_in(browser_client, partner)
    assert resp.status_code == 403
    assert 'data-forbidden="not_operator"' in resp.text
    assert "p-atlas" in resp.text
    assert TOKEN_COOKIE not in browser_client.cookies


async def test_a_wallet_token_in_the_cookie_is_refused_on_every_page(
        browser_client: httpx.AsyncClient) -> None:
    wallet = mint_token(sub="wallet-app", scopes=ROLE_SCOPES["wallet"],
                        partner_id="p-wallet")
    browser_client.cookies.set(TOKEN_COOKIE, wallet)
    for path in ("/", "/approvals", "/clients"):
        resp = await browser_client.get(path)
        assert resp.status_code == 403, path
        assert "réservée aux opérateurs" in resp.text


async def test_a_token_of_another_issuer_is_invalid(
        browser_client: httpx.AsyncClient) -> None:
    forged = LocalIssuer(realm="elsewhere", base_url="http://127.0.0.1:1").mint(
        sub="mallory", scopes=ROLE_SCOPES["operator"])
    resp = await sign_in(browser_client, forged)
    assert resp.status_code == 401
    assert 'data-reason="invalid"' in resp.text


async def test_login_never_redirects_to_another_site(browser_client: httpx.AsyncClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        resp = await sign_in(browser_client, operator_token(), next_=target)
        assert resp.headers["location"] == "/", target


async def test_a_token_a_service_refuses_ends_the_session(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    fake_state.revoked.add("amina")
    try:
        resp = await signed_in.get("/approvals")
    finally:
        fake_state.revoked.discard("amina")
    assert resp.status_code == 303
    assert query_of(resp)["reason"] == ["expired"]


async def test_sign_out_forgets_the_token(signed_in: httpx.AsyncClient) -> None:
    page = await signed_in.get("/sms")
    resp = await signed_in.post("/logout", data={"csrf_token": csrf_from(page.text)})
    assert resp.status_code == 303
    assert TOKEN_COOKIE not in signed_in.cookies
    assert (await signed_in.get("/sms")).status_code == 303


async def test_the_pages_let_the_sign_out_form_redirect_to_the_identity_provider(
        browser_client: httpx.AsyncClient) -> None:
    """Sign-out answers the form with a redirect to the provider's end-session endpoint;
    browsers check that redirect against ``form-action``, so the provider's origin is
    allowed there and no other."""
    resp = await browser_client.get("/login")
    policy = dict(part.strip().split(" ", 1) for part in
                  resp.headers["content-security-policy"].split(";"))
    issuer = urlparse(test_issuer().issuer)
    assert policy["form-action"].split() == ["'self'", f"{issuer.scheme}://{issuer.netloc}"]
