"""Every asset a page loads is served by the console itself: no CDN, no other host."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx

from tests.console.fake_platform import State
from tests.console.test_csrf import submitted_loan

PAGES = ("/", "/collections", "/approvals", "/loans", "/payments", "/sagas",
         "/dead-letters", "/reconciliation", "/sms", "/clients", "/clients?phone=%2B212600000000",
         "/payouts/in-doubt", "/reconciliation/alerts", "/accounting", "/accounting/journals",
         "/accounting/periods", "/savings", "/savings/day", "/organisation",
         "/organisation/requests")


class AssetParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.assets: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href") if tag in ("script", "link", "img", "iframe") else ():
            if tag == "link" and name == "src":
                continue
            value = attributes.get(name)
            if value is not None:
                self.assets.append((tag, value))
        if tag == "img" and attributes.get("srcset"):
            self.assets.append((tag, attributes["srcset"] or ""))


def assets_of(html: str) -> list[tuple[str, str]]:
    parser = AssetParser()
    parser.feed(html)
    return parser.assets


def is_local(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


async def test_every_script_link_and_image_is_a_local_path(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    loan_id = submitted_loan(fake_state)
    seen: set[str] = set()
    for path in (*PAGES, f"/loans/{loan_id}", "/login", "/sagas?lang=en"):
        page = await signed_in.get(path)
        assert page.status_code == 200, path
        found = assets_of(page.text)
        assert any(tag == "script" for tag, _ in found), path
        for tag, url in found:
            assert is_local(url), f"{path}: <{tag}> loads {url}"
            seen.add(url.split("?")[0])
    for url in sorted(seen):
        served = await signed_in.get(url)
        assert served.status_code == 200, url
        assert served.content, url


async def test_the_content_security_policy_allows_only_this_origin(
        signed_in: httpx.AsyncClient) -> None:
    page = await signed_in.get("/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    # only the sign-out form's redirect may leave: to the identity provider (test_auth.py)
    assert "http" not in csp.replace(csp.split("form-action", 1)[1].split(";", 1)[0], "")
    assert page.headers["x-frame-options"] == "DENY"


async def test_the_vendored_htmx_and_its_licence_are_served(
        browser_client: httpx.AsyncClient) -> None:
    js = await browser_client.get("/static/htmx.min.js")
    assert js.status_code == 200
    assert "htmx" in js.text[:5000]
    licence = await browser_client.get("/static/htmx.LICENSE.txt")
    assert "Zero-Clause BSD" in licence.text
