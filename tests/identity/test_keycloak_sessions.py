"""Operators' sessions at the real Keycloak (development realm ``noria``), over HTTP as
the console and a browser meet them: sign-out ends Keycloak's session, a session ended in
Keycloak ends the console's at its next refresh, and TOTP — optional in the development
realm, a default required action for every operator in the production one — asks an
operator who has it for a valid code."""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from shared.auth import Principal, TokenVerifier
from tests.identity.keycloak_login import CONSOLE, KeycloakBrowser
from tests.identity.totp import totp
from tests.infra import ROOT, Infra

DEV_REALM = ROOT / "deploy" / "keycloak" / "noria-realm.json"
PRODUCTION_REALM = ROOT / "deploy" / "keycloak" / "noria-realm.production.json"
OTP_FORM = "kc-otp-login-form"
OTP_SETUP_FORM = "kc-totp-settings-form"
LOGIN_FORM = "kc-form-login"


@dataclass
class Operator:
    username: str
    password: str
    keycloak_id: str
    otp_key: bytes | None = None


def admin(infra: Infra) -> httpx.Client:
    """The realm's admin API as the development scripts call it (the master realm's
    bootstrap admin), at the Keycloak the tests use."""
    password = os.environ.get("NORIA_KEYCLOAK_ADMIN_PASSWORD", "noria-admin")
    base = infra.keycloak_url.rstrip("/")
    resp = httpx.post(f"{base}/realms/master/protocol/openid-connect/token", timeout=10,
                      data={"grant_type": "password", "client_id": "admin-cli",
                            "username": "admin", "password": password})
    resp.raise_for_status()
    return httpx.Client(base_url=f"{base}/admin/realms/noria", timeout=10,
                        headers={"Authorization": f"Bearer {resp.json()['access_token']}"})


@pytest.fixture
def make_operator(infra: Infra) -> Iterator[Any]:
    """Throwaway loan officers in the shared realm, deleted afterwards."""
    made: list[str] = []
    kc = admin(infra)

    def make(*, otp: bool = False, required: tuple[str, ...] = ()) -> Operator:
        username = f"op-{uuid.uuid4().hex[:10]}"
        password = secrets.token_urlsafe(12)
        credentials: list[dict[str, Any]] = [
            {"type": "password", "value": password, "temporary": False}]
        key = secrets.token_hex(10) if otp else None
        if key is not None:  # what an authenticator app enrolled on Keycloak's page holds
            credentials.append({
                "type": "otp", "userLabel": "phone",
                "secretData": json.dumps({"value": key}),
                "credentialData": json.dumps({"subType": "totp", "digits": 6, "counter": 0,
                                              "period": 30, "algorithm": "HmacSHA1"})})
        resp = kc.post("/users", json={
            "username": username, "enabled": True, "firstName": "Test",
            "lastName": "Operator", "email": f"{username}@noria.example",
            "emailVerified": True, "credentials": credentials,
            "requiredActions": list(required),
            "attributes": {"office_id": ["ho"], "office_path": ["ho"]}})
        assert resp.status_code == 201, resp.text
        keycloak_id = resp.headers["location"].rsplit("/", 1)[-1]
        made.append(keycloak_id)
        role = kc.get("/roles/loan-officer").json()
        kc.post(f"/users/{keycloak_id}/role-mappings/realm", json=[role]).raise_for_status()
        return Operator(username, password, keycloak_id,
                        key.encode() if key is not None else None)

    yield make
    try:
        for keycloak_id in made:
            kc.delete(f"/users/{keycloak_id}")
    finally:
        kc.close()


def fresh_code(key: bytes, refused: set[str]) -> str:
    """The current code, once it differs from those already used (Keycloak refuses a
    code twice): at worst one period's wait."""
    deadline = time.monotonic() + 35
    while True:
        code = totp(key)
        if code not in refused or time.monotonic() > deadline:
            return code
        time.sleep(0.5)


# ---------------------------------------------------------------- sign-out, refresh


async def test_the_consoles_sign_out_ends_the_keycloak_session(
        infra: Infra, make_operator: Any) -> None:
    operator = make_operator()
    with KeycloakBrowser(infra.keycloak_issuer) as browser:
        page = browser.password(browser.sign_in_page(), operator.username, operator.password)
        tokens = await browser.tokens(page)
        # while Keycloak's session lasts, the next sign-in asks nothing
        assert browser.sign_in_page().redirected_code

        out = browser.sign_out(tokens)
        assert out.response.status_code == 302, out.response.text[:300]  # no confirmation
        assert out.response.headers["location"] == browser.provider.after_logout
        assert not {"KEYCLOAK_IDENTITY", "KEYCLOAK_SESSION"} & {
            c.name for c in browser.http.cookies.jar}

        again = browser.sign_in_page()
        assert again.response.status_code == 200
        assert again.form(LOGIN_FORM), "signing in again asks for the password"
        assert await browser.provider.refresh(tokens) is None


async def test_a_session_ended_in_keycloak_ends_the_consoles_at_its_next_refresh(
        infra: Infra, make_operator: Any) -> None:
    """An administrator's "sign out" in Keycloak: the console's refresh is refused, so
    its session ends within the access token's lifetime (the console refreshes 30 s
    before expiry; ``console.session``)."""
    operator = make_operator()
    with KeycloakBrowser(infra.keycloak_issuer) as browser:
        page = browser.password(browser.sign_in_page(), operator.username, operator.password)
        tokens = await browser.tokens(page)
        refreshed = await browser.provider.refresh(tokens)
        assert refreshed is not None

        with admin(infra) as kc:
            kc.post(f"/users/{operator.keycloak_id}/logout").raise_for_status()

        assert await browser.provider.refresh(refreshed) is None
        assert browser.sign_in_page().form(LOGIN_FORM)


async def test_the_console_sends_an_operator_signed_out_in_keycloak_to_the_login_page(
        infra: Infra, make_operator: Any) -> None:
    """The same seen in the console: its session, due for a refresh, ends with the
    login page once Keycloak has ended the operator's session. (The services are not
    there: the page shows them unreachable, which needs no token.)"""
    from console.app import create_app
    from console.oidc import SESSION_COOKIE
    from tests.console.conftest import IsolatedConsoleSettings

    nowhere = "http://127.0.0.1:9"
    app = create_app(IsolatedConsoleSettings(
        clients_url=nowhere, loans_url=nowhere, payments_url=nowhere,
        notifications_url=nowhere, savings_url=nowhere, upstream_timeout_s=1.0,
        oidc_issuer=infra.keycloak_issuer, oidc_jwks_url="", oidc_extra_issuers="",
        public_url=CONSOLE))
    operator = make_operator()
    with KeycloakBrowser(infra.keycloak_issuer) as browser:
        page = browser.password(browser.sign_in_page(), operator.username, operator.password)
        tokens = await browser.tokens(page)
    # as if the access token were about to expire: the next request refreshes it
    sid = app.state.sessions.open(replace(tokens, access_expires=time.time()))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=CONSOLE,
            cookies={SESSION_COOKIE: sid}) as console:
        assert (await console.get("/")).status_code == 200

        with admin(infra) as kc:
            kc.post(f"/users/{operator.keycloak_id}/logout").raise_for_status()
        # the access token the first page's refresh got runs out
        current = app.state.sessions.get(sid)
        app.state.sessions.put(sid, replace(current, access_expires=time.time()))

        resp = await console.get("/")
        assert resp.status_code == 303
        assert resp.headers["location"].startswith("/login?reason=expired")
        assert app.state.sessions.get(sid) is None


# ---------------------------------------------------------------- TOTP


async def test_an_operator_with_totp_signs_in_only_with_a_valid_code(
        infra: Infra, make_operator: Any) -> None:
    operator = make_operator(otp=True)
    assert operator.otp_key is not None
    with KeycloakBrowser(infra.keycloak_issuer) as browser:
        page = browser.password(browser.sign_in_page(), operator.username, operator.password)
        assert page.response.status_code == 200
        assert page.form(OTP_FORM), "the password alone does not sign in"
        assert page.redirected_code is None

        valid = totp(operator.otp_key)
        wrong = str((int(valid) + 1) % 10**6).zfill(6)
        refused = browser.submit(page, OTP_FORM, {"otp": wrong})
        assert refused.response.status_code == 200
        assert refused.redirected_code is None
        assert refused.form(OTP_FORM), "a wrong code leaves the operator on the OTP page"

        accepted = browser.submit(refused, OTP_FORM,
                                  {"otp": fresh_code(operator.otp_key, {wrong})})
        tokens = await browser.tokens(accepted)
        principal = await operator_principal(infra, tokens.access)
        assert principal.username == operator.username


async def test_an_operator_without_totp_is_not_asked_for_a_code_in_development(
        infra: Infra, make_operator: Any) -> None:
    operator = make_operator()
    with KeycloakBrowser(infra.keycloak_issuer) as browser:
        page = browser.password(browser.sign_in_page(), operator.username, operator.password)
        assert page.redirected_code, "the development realm does not require TOTP"


async def test_a_new_operator_sets_up_totp_at_the_first_sign_in_as_production_requires(
        infra: Infra, make_operator: Any) -> None:
    """The production realm gives every new user the required action CONFIGURE_TOTP; here
    the same required action on one operator of the development realm: the first sign-in
    shows the set-up page (the key for the authenticator app), no code until a valid one
    is entered; the next sign-in asks for a code."""
    operator = make_operator(required=("CONFIGURE_TOTP",))
    with KeycloakBrowser(infra.keycloak_issuer) as browser:
        setup = browser.password(browser.sign_in_page(), operator.username,
                                 operator.password)
        assert setup.form(OTP_SETUP_FORM), "the first sign-in asks to set up TOTP"
        assert setup.redirected_code is None
        key = setup.hidden("totpSecret").encode()
        wrong = str((int(totp(key)) + 1) % 10**6).zfill(6)
        fields = {"totpSecret": setup.hidden("totpSecret"), "userLabel": "phone"}
        again = browser.submit(setup, OTP_SETUP_FORM, {**fields, "totp": wrong})
        assert again.form(OTP_SETUP_FORM), "a wrong code does not enrol the authenticator"
        done = browser.submit(again, OTP_SETUP_FORM, {**fields, "totp": fresh_code(key, {wrong})})
        await browser.tokens(done)

    with KeycloakBrowser(infra.keycloak_issuer) as browser:
        page = browser.password(browser.sign_in_page(), operator.username, operator.password)
        assert page.form(OTP_FORM), "from now on the operator signs in with a code"


async def operator_principal(infra: Infra, access: str) -> Principal:
    """The access token as the services check it: Keycloak's, an operator's."""
    verifier = TokenVerifier({infra.keycloak_issuer:
                              f"{infra.keycloak_issuer}/protocol/openid-connect/certs"})
    principal = await verifier.verify(access)
    assert "tenant:all" in principal.scopes
    return principal


def test_totp_is_a_default_required_action_in_production_and_optional_in_development(
        ) -> None:
    production = json.loads(PRODUCTION_REALM.read_text())
    development = json.loads(DEV_REALM.read_text())
    actions = {a["alias"]: a for a in production["requiredActions"]}
    assert actions["CONFIGURE_TOTP"]["enabled"] and actions["CONFIGURE_TOTP"]["defaultAction"]
    assert (production["otpPolicyType"], production["otpPolicyDigits"],
            production["otpPolicyPeriod"]) == ("totp", 6, 30)
    assert not any(a.get("alias") == "CONFIGURE_TOTP" and a.get("defaultAction")
                   for a in development.get("requiredActions", []))
    assert not any("CONFIGURE_TOTP" in u.get("requiredActions", [])
                   for u in development.get("users", []))


def test_the_production_overlay_imports_the_realm_where_every_operator_enrols_totp() -> None:
    from tests.deploy.common import rendered

    maps = [r for r in rendered("prod") if r["kind"] == "ConfigMap"
            and r["metadata"]["name"].startswith("noria-keycloak-realm")]
    assert len(maps) == 1
    realm = json.loads(maps[0]["data"]["noria-realm.json"])
    assert realm == json.loads(PRODUCTION_REALM.read_text())
    totp_action = {a["alias"]: a for a in realm["requiredActions"]}["CONFIGURE_TOTP"]
    assert totp_action["enabled"] and totp_action["defaultAction"]
    people = [u["username"] for u in realm.get("users", []) if "serviceAccountClientId" not in u]
    assert people == [], "no demo operator in production: each enrols TOTP at first sign-in"
