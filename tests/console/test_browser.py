"""The console in real headless Chromium against the real running platform.

Run with ``pytest tests/console -m browser``. The platform comes from
``tests/console/live.py``: every process started for these tests, on ports offset by
+10000, in a database and under a topic prefix of their own (a running ``make up`` is
never reused nor disturbed). Screenshots of the main views are written to ``reports/screenshots/``.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, Page, async_playwright, expect

from shared.auth import ROLE_SCOPES
from tests.console.live import LivePlatform
from tests.identity import mint_token
from tests.infra import ROOT, Infra
from tests.kafka_facts import until

pytestmark = pytest.mark.browser

SHOTS = ROOT / "reports" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def token(role: str, sub: str, partner: str | None = None, ttl_s: int = 3600,
          now: float | None = None) -> str:
    return mint_token(sub=sub, scopes=ROLE_SCOPES[role], partner_id=partner,
                      ttl_s=ttl_s, now=now)


@pytest.fixture(scope="module")
def live(infra: Infra) -> Iterator[LivePlatform]:
    """Module-scoped: the processes it starts are gone before other tests run."""
    platform = LivePlatform.from_environment() or LivePlatform.start(infra)
    yield platform
    platform.stop()


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def operator_name() -> str:
    return f"checker-{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def page(browser: Browser, live: LivePlatform, operator_name: str
               ) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=live.console, locale="fr-FR",
                                        viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    await sign_in(page, token("operator", operator_name))
    yield page
    await context.close()


async def sign_in(page: Page, bearer: str) -> None:
    await page.goto("/login")
    await page.fill("#token", bearer)
    await page.click("button[type=submit]")


SHOT_MAX_HEIGHT = 3000
MORE_THAN_A_PAGE = 30   # the approvals page holds 25


async def shot(page: Page, name: str) -> None:
    """The page from its top, down to SHOT_MAX_HEIGHT pixels: on a database that has seen
    many runs a list page is tens of thousands of pixels tall, and shooting all of it
    takes longer than the page took to render."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    width, height = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True,
                          clip={"x": 0, "y": 0, "width": width,
                                "height": min(height, SHOT_MAX_HEIGHT)})


class Seed:
    """Arrange business data through the services' own APIs."""

    def __init__(self, live: LivePlatform) -> None:
        self.live = live
        self.partner_id = f"p-{uuid.uuid4().hex[:6]}"
        self.agent = {"Authorization": "Bearer " + token("partner", f"agent-{uuid.uuid4().hex[:4]}",
                                                         partner=self.partner_id)}
        self.ops = {"Authorization": "Bearer " + token("operator", "ops-setup")}

    async def client(self, http: httpx.AsyncClient) -> dict[str, Any]:
        phone = f"+2126{random.randint(10**7, 10**8 - 1)}"
        cin = f"BK{random.randint(10**5, 10**6 - 1)}"
        resp = await http.post(f"{self.live.urls['clients']}/v1/clients", headers=self.agent,
                               # a partner onboards for itself; an operator names the partner
                               json={"partner_id": self.partner_id,
                                     "full_name": f"Salma Idrissi {uuid.uuid4().hex[:4]}",
                                     "national_id": cin, "phone": phone,
                                     "date_of_birth": "1991-04-12", "language": "fr",
                                     "sms_consent": True, "region": "Marrakech-Safi"})
        assert resp.status_code == 201, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def verify(self, http: httpx.AsyncClient, client_id: str) -> None:
        resp = await http.post(f"{self.live.urls['clients']}/v1/clients/{client_id}/kyc",
                               headers=self.ops, json={"decision": "verified"})
        assert resp.status_code == 200, resp.text

    async def product(self, http: httpx.AsyncClient) -> str:
        resp = await http.post(f"{self.live.urls['loans']}/v1/products", headers=self.ops, json={
            "name": "Tijara hebdo", "interest_method": "declining_balance",
            "amortization": "equal_installments", "frequency": "weekly", "annual_rate": "0.24",
            "min_principal": "500.00", "max_principal": "20000.00", "min_term": 4,
            "max_term": 52})
        assert resp.status_code == 201, resp.text
        product_id: str = resp.json()["id"]
        return product_id

    async def repayment(self, http: httpx.AsyncClient, loan_id: str, msisdn: str,
                        amount: str) -> str:
        """The wallet pays at the provider (the simulator, whose callback also tells
        payments), then reports it with the provider's transaction reference: payments
        confirms it with the provider and credits it once (services/payments/README.md)."""
        paid = await http.post(f"{self.live.urls['mobile-money-sim']}/sim/collections",
                               json={"msisdn": msisdn, "amount": amount,
                                     "reference": loan_id})
        assert paid.status_code == 201, paid.text
        wallet = {"Authorization": "Bearer " + token("wallet", "wallet-app",
                                                     partner=self.partner_id),
                  "Idempotency-Key": uuid.uuid4().hex}
        resp = await http.post(f"{self.live.urls['payments']}/v1/repayments", headers=wallet,
                               json={"loan_id": loan_id, "amount": amount, "currency": "MAD",
                                     "payer_msisdn": msisdn,
                                     "external_ref": f"w-{uuid.uuid4().hex[:10]}",
                                     "provider_reference": paid.json()["transactionReference"]})
        assert resp.status_code == 202, resp.text
        payment_id: str = resp.json()["payment_id"]
        return payment_id

    async def application(self, http: httpx.AsyncClient, client_id: str, product_id: str,
                          *, as_operator: dict[str, str] | None = None,
                          principal: str = "3000.00") -> str:
        async def submitted() -> httpx.Response | None:
            # loans learns of the client from clients.events: until then it says so (422)
            resp = await http.post(f"{self.live.urls['loans']}/v1/loans",
                                   headers=as_operator or self.agent,
                                   json={"client_id": client_id, "product_id": product_id,
                                         "principal": principal, "term": 12})
            assert resp.status_code in (201, 422), resp.text
            return resp if resp.status_code == 201 else None

        resp = await until(submitted, f"loans knows client {client_id}", timeout_s=30,
                           interval_s=0.2)
        assert resp is not None
        loan_id: str = resp.json()["id"]
        return loan_id

    async def reject(self, http: httpx.AsyncClient, loan_id: str) -> None:
        resp = await http.post(f"{self.live.urls['loans']}/v1/loans/{loan_id}/reject",
                               headers=self.ops, json={"reason": "test data, withdrawn"})
        assert resp.status_code == 200, resp.text


async def test_the_operator_signs_in_and_sees_every_service_ready(page: Page) -> None:
    await expect(page.locator("h1")).to_contain_text("Santé du portefeuille")
    for name in ("clients", "loans", "payments", "notifications"):
        await expect(page.locator(f'.health.up[data-service="{name}"]')).to_be_visible(
            timeout=20_000)
    await shot(page, "01-portfolio")


async def test_find_a_client_by_phone_and_record_the_kyc_decision(
        page: Page, live: LivePlatform) -> None:
    seed = Seed(live)
    async with httpx.AsyncClient(timeout=10) as http:
        client = await seed.client(http)
    await page.click("text=Clients")
    await page.fill("input[name=phone]", "0" + client["phone"][4:])  # the local form 06…
    await page.click("#client-search button[type=submit]")
    results = page.locator("#client-results")
    await expect(results).to_contain_text(client["full_name"])
    await shot(page, "02-client-lookup")
    await results.get_by_text(client["full_name"]).click()
    await expect(page.locator("#kyc-form")).to_be_visible()
    await page.select_option("#kyc-form select[name=decision]", "verified")
    await page.click("#kyc-form button[type=submit]")
    await expect(page.locator(".flash")).to_contain_text("Décision KYC enregistrée")
    await expect(page.locator(".badge.s-verified")).to_be_visible()
    await shot(page, "03-client-file")


async def test_approve_a_loan_and_see_it_become_active(page: Page, live: LivePlatform) -> None:
    seed = Seed(live)
    async with httpx.AsyncClient(timeout=10) as http:
        client = await seed.client(http)
        await seed.verify(http, client["id"])
        product_id = await seed.product(http)
        loan_id = await seed.application(http, client["id"], product_id)
    await page.goto(f"/approvals?client_id={client['id']}")   # found among any others
    card = page.locator(f'section[data-loan="{loan_id}"]')
    await expect(card).to_contain_text(client["full_name"])
    await expect(card).to_contain_text("3\u202f000,00 MAD")
    await expect(card.locator("table.preview")).to_be_visible()
    await card.scroll_into_view_if_needed()
    await shot(page, "04-approvals")
    await card.locator("button[data-action=approve]").click()
    await expect(page).to_have_url(f"{live.console}/loans/{loan_id}?flash=approved")
    await expect(page.locator("#loan-status")).to_have_attribute("data-status", "active",
                                                                 timeout=90_000)
    await expect(page.locator(".saga")).to_contain_text("DisbursementCompleted",
                                                        timeout=10_000)
    await expect(page.locator("#ledger")).to_be_visible()
    async with httpx.AsyncClient(timeout=10) as http:
        payment_id = await seed.repayment(http, loan_id, client["phone"], "300.00")
    repayment = page.locator(f'.repayment[data-payment="{payment_id}"]')

    async def shown() -> int:
        await page.reload()
        return await repayment.count()

    await until(shown, f"repayment {payment_id} on the loan page", timeout_s=60,
                interval_s=0.5)
    await expect(repayment).to_contain_text("300,00 MAD")
    await expect(repayment.locator("table")).to_contain_text("Intérêts")
    await expect(repayment.locator("table")).to_contain_text("Principal")
    await shot(page, "05-loan-active")
    await page.goto(f"/sagas?state=completed&loan_id={loan_id}")
    await expect(page.locator("main")).to_contain_text(loan_id)
    await shot(page, "06-sagas")


async def test_maker_checker_refusal_from_loans_is_shown_on_the_queue(
        browser: Browser, live: LivePlatform) -> None:
    seed = Seed(live)
    maker = f"maker-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(timeout=10) as http:
        client = await seed.client(http)
        await seed.verify(http, client["id"])
        product_id = await seed.product(http)
        loan_id = await seed.application(
            http, client["id"], product_id,
            as_operator={"Authorization": "Bearer " + token("operator", maker)})
    context = await browser.new_context(base_url=live.console, locale="fr-FR")
    page = await context.new_page()
    try:
        await sign_in(page, token("operator", maker))
        await page.goto(f"/approvals?client_id={client['id']}")
        card = page.locator(f'section[data-loan="{loan_id}"]')
        await card.locator("button[data-action=approve]").click()
        refused = page.locator(f'section[data-loan="{loan_id}"] .panel.problem')
        await expect(refused).to_be_visible()
        await expect(refused).to_contain_text("maker-checker")
        await expect(refused).to_contain_text("approved_by")
        await refused.scroll_into_view_if_needed()
        await shot(page, "04b-maker-checker-refused")
        async with httpx.AsyncClient(timeout=10) as http:
            loan = await http.get(f"{live.urls['loans']}/v1/loans/{loan_id}",
                                  headers=seed.ops)
        assert loan.json()["status"] == "submitted"
    finally:
        await context.close()


async def test_the_operator_pages_to_the_last_of_many_applications_and_its_preview(
        page: Page, live: LivePlatform) -> None:
    """More applications than one approvals page holds, whatever else is waiting: the
    operator follows "next page" to the last one and finds its schedule preview."""
    seed = Seed(live)
    async with httpx.AsyncClient(timeout=10) as http:
        client = await seed.client(http)
        await seed.verify(http, client["id"])
        product_id = await seed.product(http)
        loan_ids = [await seed.application(http, client["id"], product_id,
                                           principal=f"{1000 + n}.00")
                    for n in range(MORE_THAN_A_PAGE)]
    try:
        await page.goto(f"/approvals?client_id={client['id']}")
        seen: set[str] = set()
        pages = 0
        while True:
            pages += 1
            cards = page.locator("section.approval")
            await expect(cards.first).to_be_visible()
            for loan_id in await cards.evaluate_all("els => els.map(e => e.dataset.loan)"):
                seen.add(loan_id)
                card = page.locator(f'section[data-loan="{loan_id}"]')
                await expect(card.locator("table.preview")).to_be_visible()
            following = page.locator("a#approvals-next")
            if not await following.count():
                break
            await following.click()
            await expect(page).to_have_url(re.compile(r"[?&]after="))
        assert pages >= 2
        assert seen == set(loan_ids)
        await shot(page, "04c-approvals-last-page")
    finally:
        async with httpx.AsyncClient(timeout=10) as http:
            for loan_id in loan_ids:
                await seed.reject(http, loan_id)


async def test_replay_a_dead_letter(page: Page, live: LivePlatform, infra: Infra) -> None:
    key = f"console-{uuid.uuid4().hex[:10]}"
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(live.topic("clients.events"), b"{this is not an envelope",
                                     key=key.encode(), headers=[("type", b"ClientRegistered")])
    finally:
        await producer.stop()
    row = page.locator(f'tr[data-key="{key}"]').first

    async def listed() -> int:
        await page.goto("/dead-letters")
        return await row.count()

    await until(listed, f"dead letter with key {key} on the page", timeout_s=60,
                interval_s=0.5)
    await expect(row).to_be_visible()
    await expect(page.locator("#dlq-groups")).to_contain_text("clients.events")
    await shot(page, "07-dead-letters")
    which = await row.get_attribute("data-dead-letter")
    assert which
    service, dead_letter_id = which.split("-", 1)
    await row.locator("button[data-action=replay]").click()
    result = page.locator("#replay-result")
    await expect(result).to_contain_text(f"{service}#{dead_letter_id}")
    await page.goto("/dead-letters?show=all")
    replayed = page.locator(f'tr[data-dead-letter="{which}"]')
    await expect(replayed.locator("td.num")).to_contain_text("1")


async def test_the_other_views_render_with_live_data(page: Page) -> None:
    views = {"08-collections": "/collections", "09-payments": "/payments",
             "10-reconciliation": f"/reconciliation?provider=sim&date={dt.date.today()}",
             "11-sms": "/sms", "12-sagas-attention": "/sagas", "13-loans": "/loans"}
    for name, path in views.items():
        resp = await page.goto(path)
        assert resp is not None and resp.status == 200, path
        await expect(page.locator(".panel.unreachable")).to_have_count(0)
        await shot(page, name)


async def test_tablet_layout_and_english(browser: Browser, live: LivePlatform) -> None:
    context = await browser.new_context(base_url=live.console, locale="en-GB",
                                        viewport={"width": 768, "height": 1024},
                                        has_touch=True)
    page = await context.new_page()
    try:
        await sign_in(page, token("operator", "tablet-op"))
        await expect(page.locator("h1")).to_contain_text("Portfolio health")
        await expect(page.locator("nav.nav")).to_be_hidden()
        await page.click("label.menu-button")
        await expect(page.locator("nav.nav")).to_be_visible()
        await shot(page, "14-tablet-menu")
        await page.click("nav.nav >> text=Approvals")
        await expect(page.locator("h1")).to_contain_text("Approvals queue")
        await shot(page, "15-tablet-approvals")
    finally:
        await context.close()


async def test_a_partner_token_is_refused_and_an_expired_one_sent_to_login(
        browser: Browser, live: LivePlatform) -> None:
    context = await browser.new_context(base_url=live.console, locale="fr-FR")
    page = await context.new_page()
    try:
        await sign_in(page, token("partner", "agent-x", partner="p-x"))
        await expect(page.locator("[data-forbidden=not_operator]")).to_be_visible()
        await shot(page, "16-partner-refused")
        expired = token("operator", "late-op", ttl_s=60, now=time.time() - 3600)
        await context.add_cookies([{"name": "noria_console_token", "value": expired,
                                    "url": live.console}])
        await page.goto("/approvals")
        await expect(page).to_have_url(f"{live.console}/login?reason=expired&next=%2Fapprovals")
        await expect(page.locator("[data-reason=expired]")).to_be_visible()
    finally:
        await context.close()


# ---------------------------------------------------------------- Keycloak sign-in


def keycloak_token(infra: Infra, username: str, password: str) -> str:
    """A demo operator's access token from Keycloak (the development client noria-cli)."""
    resp = httpx.post(f"{infra.keycloak_issuer}/protocol/openid-connect/token", timeout=10,
                      data={"grant_type": "password", "client_id": "noria-cli",
                            "username": username, "password": password, "scope": "openid"})
    assert resp.status_code == 200, resp.text
    access: str = resp.json()["access_token"]
    return access


async def keycloak_sign_in(page: Page, username: str, password: str) -> None:
    """The console's sign-in button, then Keycloak's own login page."""
    await page.goto("/login")
    await page.click("#sign-in")
    await page.wait_for_selector("#username")
    assert "/realms/noria/" in page.url
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#kc-login")


async def test_operators_sign_in_on_keycloak_approve_maker_checker_and_sign_out(
        browser: Browser, live: LivePlatform, infra: Infra) -> None:
    """amina (loan officer) submits an application with her Keycloak account and sees it
    in the console after signing in on Keycloak's page; youssef (branch manager, another
    real user) approves it; he signs out, and Back brings nothing of his session back."""
    from scripts.keycloak_dev import ensure_demo_passwords

    passwords = ensure_demo_passwords()
    amina = keycloak_token(infra, "amina", passwords["amina"])
    seed = Seed(live)
    as_amina = {"Authorization": f"Bearer {amina}"}
    async with httpx.AsyncClient(timeout=10) as http:
        for office in ({"id": "r-souss", "kind": "region", "name": "Souss-Massa",
                        "parent_id": "ho"},
                       {"id": "b-agadir", "kind": "branch", "name": "Agadir",
                        "parent_id": "r-souss"}):
            made = await http.post(f"{live.urls['clients']}/v1/offices", json=office,
                                   headers=seed.ops)
            assert made.status_code in (201, 409), made.text
        seed.agent = as_amina  # amina registers the client: it is in her office
        client = await seed.client(http)
        assert client["office_id"] == "b-agadir"
        # maker-checker: who onboarded the client does not decide its KYC; youssef does
        as_youssef = {"Authorization":
                      f"Bearer {keycloak_token(infra, 'youssef', passwords['youssef'])}"}
        resp = await http.post(f"{live.urls['clients']}/v1/clients/{client['id']}/kyc",
                               headers=as_youssef, json={"decision": "verified"})
        assert resp.status_code == 200, resp.text
        product_id = await seed.product(http)
        loan_id = await seed.application(http, client["id"], product_id, as_operator=as_amina)

    maker = await browser.new_context(base_url=live.console, locale="fr-FR")
    try:
        page = await maker.new_page()
        await keycloak_sign_in(page, "amina", passwords["amina"])
        await expect(page.locator(".operator")).to_be_visible()
        await page.goto(f"/approvals?client_id={client['id']}")
        await expect(page.locator(f'section[data-loan="{loan_id}"]')).to_contain_text(
            client["full_name"])
    finally:
        await maker.close()

    checker = await browser.new_context(base_url=live.console, locale="fr-FR")
    try:
        page = await checker.new_page()
        await keycloak_sign_in(page, "youssef", passwords["youssef"])
        await page.goto(f"/approvals?client_id={client['id']}")
        card = page.locator(f'section[data-loan="{loan_id}"]')
        await card.locator("button[data-action=approve]").click()
        await expect(page).to_have_url(f"{live.console}/loans/{loan_id}?flash=approved")
        async with httpx.AsyncClient(timeout=10) as http:
            loan = (await http.get(f"{live.urls['loans']}/v1/loans/{loan_id}",
                                   headers=seed.ops)).json()
        assert loan["status"] != "submitted"

        await page.goto(f"/loans/{loan_id}")
        await page.click("form[action='/logout'] button")
        await expect(page).to_have_url(re.compile(r"/login\?reason=signed_out"))
        await page.go_back()
        await expect(page.locator("form[action='/logout']")).to_have_count(0)
        await page.goto(f"/loans/{loan_id}")
        await expect(page).to_have_url(re.compile(r"/login\?"))
    finally:
        await checker.close()


async def test_signing_out_of_the_console_ends_the_keycloak_session(
        browser: Browser, live: LivePlatform) -> None:
    """Sign-out goes through Keycloak's end-session endpoint in the browser: Keycloak's
    own session and cookies are gone, so signing in again asks for the password."""
    from scripts.keycloak_dev import ensure_demo_passwords

    passwords = ensure_demo_passwords()
    context = await browser.new_context(base_url=live.console, locale="fr-FR")
    try:
        page = await context.new_page()
        await keycloak_sign_in(page, "youssef", passwords["youssef"])
        await expect(page.locator(".operator")).to_be_visible()
        await page.click("form[action='/logout'] button")
        await expect(page).to_have_url(re.compile(r"/login\?reason=signed_out"))
        # the Keycloak session ended too: signing in again asks for the password
        await page.goto("/login")
        await page.click("#sign-in")
        await expect(page.locator("#password")).to_be_visible(timeout=10_000)
    finally:
        await context.close()
