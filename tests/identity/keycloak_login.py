"""Keycloak's login pages driven over HTTP, as a browser would: the console's client
(authorization code + PKCE, ``console.oidc.Provider``), the username and password form,
the OTP form, the OTP set-up page and the end-session endpoint.

Keycloak marks its cookies ``Secure``; browsers send those to ``http://127.0.0.1`` (a
secure context), httpx does not, so the jar's cookies lose the flag after each answer.
The redirect URI is the browser tests' console (``http://127.0.0.1:18100``, registered
on the development realm's ``noria-console``); nothing is sent there: the code is read
from Keycloak's redirect.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from console.oidc import Provider, Tokens

CONSOLE = "http://127.0.0.1:18100"


@dataclass
class Page:
    """One of Keycloak's pages (200) or its redirect back to the console (302)."""

    response: httpx.Response

    @property
    def redirected_code(self) -> str | None:
        if self.response.status_code not in (302, 303):
            return None
        query = parse_qs(urlsplit(self.response.headers["location"]).query)
        return query.get("code", [None])[0]

    def form(self, form_id: str) -> str | None:
        """The action URL of the form with this id, if the page shows it."""
        found = re.search(rf'<form[^>]*id="{form_id}"[^>]*>', self.response.text)
        if found is None:
            return None
        action = re.search(r'action="([^"]+)"', found.group(0))
        return html.unescape(action.group(1)) if action else None

    def hidden(self, name: str) -> str:
        found = re.search(rf'<input[^>]*name="{name}"[^>]*>', self.response.text)
        assert found, f"no input {name} on the page"
        value = re.search(r'value="([^"]*)"', found.group(0))
        assert value, f"input {name} has no value"
        return html.unescape(value.group(1))


class KeycloakBrowser:
    """A cookie jar and the console's OIDC client, against the development realm."""

    def __init__(self, issuer: str) -> None:
        self.provider = Provider(issuer, "noria-console", None, CONSOLE, None)
        self.http = httpx.Client(timeout=15, follow_redirects=False)
        self._verifier = ""

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> KeycloakBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _go(self, method: str, url: str, **kwargs: object) -> Page:
        """One request, and Keycloak's redirects to its own pages (a required action's);
        a redirect elsewhere (the console) is where it stops."""
        resp = self.http.request(method, url, **kwargs)  # type: ignore[arg-type]
        for _ in range(5):
            for cookie in self.http.cookies.jar:
                cookie.secure = False
            location = resp.headers.get("location", "")
            if resp.status_code not in (302, 303) or not str(
                    resp.url.join(location)).startswith(self.provider.issuer + "/"):
                break
            resp = self.http.get(resp.url.join(location))
        return Page(resp)

    def sign_in_page(self) -> Page:
        """The console's *Sign in*: Keycloak's login form, or straight back with a code
        when Keycloak's session is still open."""
        url, sealed = self.provider.begin("/")
        pending = self.provider.unseal(sealed)
        assert pending is not None
        self._verifier = pending["verifier"]
        return self._go("GET", url)

    def submit(self, page: Page, form_id: str, data: dict[str, str]) -> Page:
        action = page.form(form_id)
        assert action, f"the page shows no form {form_id}: {page.response.status_code}"
        return self._go("POST", action, data=data)

    def password(self, page: Page, username: str, password: str) -> Page:
        return self.submit(page, "kc-form-login",
                           {"username": username, "password": password, "credentialId": ""})

    async def tokens(self, page: Page) -> Tokens:
        """The console's token exchange for the code Keycloak redirected with."""
        code = page.redirected_code
        assert code, "Keycloak did not redirect back with a code"
        tokens = await self.provider.exchange(code, self._verifier)
        assert tokens is not None
        return tokens

    def sign_out(self, tokens: Tokens) -> Page:
        """Where the console's sign-out sends the browser: Keycloak's end-session
        endpoint."""
        return self._go("GET", self.provider.logout_url(tokens))
