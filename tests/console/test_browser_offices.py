"""Branches, loan officers and group lending in the console, in real headless Chromium
against the real running platform (``tests/console/live.py``), operators signed in on
Keycloak's own page: nadia (head office), amina (loan officer, Agadir) and youssef
(branch manager, Agadir).

The data is made through the services' public APIs: offices and loan officers, clients
onboarded in a branch, solidarity groups whose group loan is approved and disbursed by
one saga, and close of business so the portfolio's snapshot exists. Every test asserts
what the operator sees and waits for facts (Playwright's ``expect``, ``until``).

Run under ``flock /tmp/noria-platform.lock``: the platform listens on fixed ports.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from console.i18n import date as shown_date
from console.i18n import money, percent
from shared.auth import ROLE_SCOPES
from tests.console import test_browser as shared
from tests.console.live import LivePlatform
from tests.identity import mint_token
from tests.infra import Infra
from tests.kafka_facts import until

pytestmark = pytest.mark.browser

D = Decimal
AGADIR, AGADIR_PATH = "b-agadir", "ho/r-souss/b-agadir"
"""The branch of the realm's amina and youssef (their tokens' office claims)."""
SHORT = D("25.00")
"""What the branch's day-end count is short by."""


# ---------------------------------------------------------------- the platform, a browser


@pytest.fixture(scope="module")
def live(infra: Infra) -> Iterator[LivePlatform]:
    """The module's own platform: its processes are gone before other tests run."""
    platform = LivePlatform.from_environment() or LivePlatform.start(infra)
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=chromium,
                                            args=shared.CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
def passwords() -> dict[str, str]:
    from scripts.keycloak_dev import ensure_demo_passwords

    return ensure_demo_passwords()


@asynccontextmanager
async def signed_in(browser: Browser, live: LivePlatform, passwords: dict[str, str],
                    username: str) -> AsyncIterator[Page]:
    """A browser of its own, signed in as ``username`` on Keycloak's page."""
    context = await browser.new_context(base_url=live.console, locale="fr-FR",
                                        viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        await shared.keycloak_sign_in(page, username, passwords[username])
        await expect(page.locator(".operator")).to_be_visible(timeout=20_000)
        yield page
    finally:
        await context.close()


def bearer(sub: str, office_id: str | None = None, office_path: str | None = None
           ) -> dict[str, str]:
    """An operator's token from the tests' issuer; with an office, scoped to it."""
    return {"Authorization": "Bearer " + mint_token(
        sub=sub, scopes=ROLE_SCOPES["operator"], office_id=office_id,
        office_path=office_path)}


def fr_amount(value: str | Decimal) -> str:
    """An amount as an officer types it: 254,60."""
    return f"{D(value):.2f}".replace(".", ",")


# ---------------------------------------------------------------- the data, by the APIs


class Api:
    def __init__(self, live: LivePlatform, http: httpx.AsyncClient) -> None:
        self.live = live
        self.http = http
        self.maker = bearer(f"ops-maker-{uuid.uuid4().hex[:6]}")
        self.checker = bearer(f"ops-checker-{uuid.uuid4().hex[:6]}")

    async def call(self, method: str, service: str, path: str, *,
                   headers: dict[str, str] | None = None, expect: tuple[int, ...] = (200,),
                   **kwargs: Any) -> Any:
        resp = await self.http.request(method, f"{self.live.urls[service]}{path}",
                                       headers=headers or self.maker, **kwargs)
        assert resp.status_code in expect, (method, path, resp.status_code, resp.text)
        return resp.json()

    async def office(self, office_id: str, kind: str, name: str, parent: str) -> None:
        await self.call("POST", "clients", "/v1/offices", expect=(201, 409),
                        json={"id": office_id, "kind": kind, "name": name,
                              "parent_id": parent})

    async def officer(self, office_id: str, name: str) -> str:
        staff_id = f"lo-{uuid.uuid4().hex[:8]}"
        await self.call("POST", "clients", "/v1/staff", expect=(201,),
                        json={"id": staff_id, "full_name": name, "role": "loan_officer",
                              "office_id": office_id})
        return staff_id

    async def client(self, office_id: str, officer_id: str, name: str,
                     partner: str | None = None) -> dict[str, Any]:
        """Onboarded by one operator in the office, with its officer; verified by another."""
        body = {"partner_id": partner or f"p-{uuid.uuid4().hex[:6]}", "full_name": name,
                "national_id": f"{random.choice('BJKLMN')}{random.choice('ABEH')}"
                               f"{random.randint(100000, 999999)}",
                "phone": f"06{random.randint(0, 99_999_999):08d}",
                "date_of_birth": "1986-05-14", "language": "fr", "sms_consent": True,
                "office_id": office_id, "officer_id": officer_id}
        client: dict[str, Any] = await self.call("POST", "clients", "/v1/clients",
                                                 expect=(201,), json=body)
        await self.call("POST", "clients", f"/v1/clients/{client['id']}/kyc",
                        headers=self.checker, json={"decision": "verified"})
        return client

    async def weekly_product(self) -> str:
        product = await self.call("POST", "loans", "/v1/products", expect=(201,), json={
            "name": f"Tiwizi hebdo {uuid.uuid4().hex[:4]}",
            "interest_method": "declining_balance", "amortization": "equal_installments",
            "frequency": "weekly", "annual_rate": "0.24", "min_principal": "500.00",
            "max_principal": "20000.00", "min_term": 4, "max_term": 12})
        return str(product["id"])

    async def group_loan(self, group_loan_id: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.call("GET", "loans",
                                               f"/v1/group-loans/{group_loan_id}")
        return body

    async def portfolio(self, **scope: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.call("GET", "loans", "/v1/portfolio", params=scope)
        return body


@dataclass
class Group:
    """A branch's loan officer, the clients of one solidarity group and its group loan
    (disbursed), and the group's first meeting (the first installments' due date)."""

    office_id: str
    officer_id: str
    officer_name: str
    members: list[dict[str, Any]]
    group: dict[str, Any]
    loan: dict[str, Any]
    firsts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """member's loan id → its first installment"""

    @property
    def meeting(self) -> str:
        days = {str(i["due_date"]) for i in self.firsts.values()}
        assert len(days) == 1, days
        return days.pop()

    @property
    def loan_of(self) -> dict[str, str]:
        return {m["client_id"]: m["loan_id"] for m in self.loan["members"]}

    @property
    def expected(self) -> Decimal:
        return sum((D(i["total"]) for i in self.firsts.values()), D("0.00"))


async def disbursed_group(api: Api, office_id: str, officer_name: str, product: str,
                          principals: list[str]) -> Group:
    officer_id = await api.officer(office_id, officer_name)
    tag = uuid.uuid4().hex[:4]
    partner = f"p-{tag}"   # a group's members are one partner's clients
    members = [await api.client(office_id, officer_id, f"{first} {tag}", partner)
               for first in ("Fatima Zahra Alaoui", "Khadija Amrani", "Aicha Tazi",
                             "Naima Berrada")[:len(principals)]]
    group: dict[str, Any] = await api.call(
        "POST", "clients", "/v1/groups", expect=(201,),
        json={"name": f"Tifaout {tag}", "leader_id": members[0]["id"],
              "member_ids": [m["id"] for m in members], "officer_id": officer_id})
    body = {"group_id": group["id"], "product_id": product, "term": 4,
            "members": [{"client_id": m["id"], "principal": p}
                        for m, p in zip(members, principals, strict=True)]}

    async def applied() -> dict[str, Any] | None:
        # loans learns of the group and its members from clients.events a moment later
        resp = await api.http.post(f"{api.live.urls['loans']}/v1/group-loans", json=body,
                                   headers=api.maker)
        assert resp.status_code in (201, 422), resp.text
        out: dict[str, Any] | None = resp.json() if resp.status_code == 201 else None
        return out

    submitted = await until(applied, f"group loan of {group['id']} accepted", timeout_s=60,
                            interval_s=0.3)
    assert submitted is not None
    await api.call("POST", "loans", f"/v1/group-loans/{submitted['id']}/approve",
                   headers=api.checker, json={})

    async def active() -> dict[str, Any] | None:
        now = await api.group_loan(submitted["id"])
        assert now["status"] not in ("failed", "rejected"), now
        return now if now["status"] == "active" else None

    loan = await until(active, f"group loan {submitted['id']} active", timeout_s=120,
                       interval_s=0.5)
    assert loan is not None
    out = Group(office_id, officer_id, officer_name, members, group, loan)
    for m in loan["members"]:
        schedule = await api.call("GET", "loans", f"/v1/loans/{m['loan_id']}/schedule")
        out.firsts[m["loan_id"]] = schedule["installments"][0]
    return out


@dataclass
class World:
    region: str
    branch: Group
    """a branch of a region of its own: the dashboard's drill-down"""
    agadir: Group
    """amina's and youssef's branch"""
    unit: str
    unit_officer: str
    mover: dict[str, Any]
    """a client of Agadir (in no group) to transfer to the mobile unit"""
    closed: str
    """the business date closed"""


@pytest.fixture(scope="module")
async def world(live: LivePlatform) -> AsyncIterator[World]:
    async with httpx.AsyncClient(timeout=20) as http:
        api = Api(live, http)
        await api.office("r-souss", "region", "Souss-Massa", "ho")
        await api.office(AGADIR, "branch", "Agadir", "r-souss")
        tag = uuid.uuid4().hex[:6]
        region, branch, unit = f"r-{tag}", f"b-{tag}", f"m-{tag}"
        await api.office(region, "region", f"Drâa {tag}", "ho")
        await api.office(branch, "branch", f"Zagora {tag}", region)
        await api.office(unit, "mobile_unit", f"Souk Agadir {tag}", AGADIR)
        unit_officer = await api.officer(unit, f"Hamid Souk {tag}")
        product = await api.weekly_product()
        zagora, agadir = await asyncio.gather(
            disbursed_group(api, branch, f"Rachid Benali {tag}", product,
                            ["1000.00", "1500.00", "500.00"]),
            disbursed_group(api, AGADIR, f"Samira Ouali {tag}", product,
                            ["1000.00", "1200.00", "800.00"]))
        mover = await api.client(AGADIR, agadir.officer_id, f"Hassan Idrissi {tag}")

        # close of business: the portfolio's snapshot by office, officer and product
        closed = str((await api.call("GET", "loans", "/v1/business-date"))["business_date"])
        run = await api.call("POST", "loans", "/v1/close-of-business", expect=(200, 202),
                             json={"business_date": closed})

        async def succeeded() -> dict[str, Any] | None:
            now: dict[str, Any] = await api.call("GET", "loans",
                                                 f"/v1/close-of-business/{run['run_id']}")
            assert now["status"] != "failed", now
            return now if now["status"] == "succeeded" else None

        await until(succeeded, f"close of business {closed}", timeout_s=120, interval_s=0.5)
        yield World(region, zagora, agadir, unit, unit_officer, mover, closed)


# ---------------------------------------------------------------- helpers on the pages


async def open_row(page: Page, url: str, row: str, pages: int = 40) -> None:
    """``url``, then its "next page" links until ``row`` is on the page."""
    await page.goto(url)
    for _ in range(pages):
        if await page.locator(row).count():
            return
        following = page.locator("a[rel=next]")
        if not await following.count():
            break
        href = await following.first.get_attribute("href")
        assert href
        await page.goto(href)
    raise AssertionError(f"{row} not found from {url}")


async def figures_match(page: Page, portfolio: dict[str, Any]) -> None:
    """The dashboard's cards say what the portfolio API says for the same scope."""
    cards = page.locator("#figures")
    await expect(cards.locator('[data-figure="outstanding"]')).to_have_text(
        money(portfolio["outstanding_principal"], "fr"))
    await expect(cards.locator('[data-figure="loans"]')).to_have_text(
        str(portfolio["loans_active"]))
    for days in ("par1", "par30", "par90"):
        await expect(cards.locator(f'[data-par="{days}"]')).to_have_text(
            percent(portfolio["par"][days]["ratio"], "fr"))
    snap = portfolio.get("last_snapshot") or {}
    collected = (snap.get("collected") or {}).get("amount")
    await expect(cards.locator('[data-figure="collected"]')).to_have_text(
        money(collected, "fr") if collected is not None else "—")


# ---------------------------------------------------------------- (a) the dashboard


async def test_the_branch_dashboard_drills_down_region_branch_officer_as_the_portfolio_says(
        browser: Browser, live: LivePlatform, passwords: dict[str, str],
        world: World) -> None:
    branch = world.branch
    async with httpx.AsyncClient(timeout=20) as http:
        api = Api(live, http)
        by_region = await api.portfolio(office_id=world.region)
        by_branch = await api.portfolio(office_id=branch.office_id)
        by_officer = await api.portfolio(officer_id=branch.officer_id)
    # the region's and the branch's loans are this test's: three members, 3 000.00
    for portfolio in (by_region, by_branch, by_officer):
        assert portfolio["loans_active"] == 3, portfolio
        assert D(portfolio["outstanding_principal"]) == D("3000.00"), portfolio
        assert portfolio["as_of_business_date"] is not None, portfolio   # closed once

    async with signed_in(browser, live, passwords, "nadia") as page:
        await open_row(page, "/branches", f'tr[data-office="{world.region}"]')
        region_row = page.locator(f'tr[data-office="{world.region}"]')
        await expect(region_row).to_contain_text(money("3000.00", "fr"))
        await region_row.locator("a").first.click()
        await expect(page).to_have_url(f"{live.console}/branches?office_id={world.region}")
        await figures_match(page, by_region)

        branch_row = page.locator(f'#offices tr[data-office="{branch.office_id}"]')
        await expect(branch_row).to_contain_text(f"Zagora {world.region[2:]}")
        await branch_row.locator("a").first.click()
        await expect(page).to_have_url(
            f"{live.console}/branches?office_id={branch.office_id}")
        await expect(page.locator(".breadcrumb")).to_contain_text(world.region)
        await figures_match(page, by_branch)
        # the close of business's snapshot, in the branch's history
        await expect(page.locator("#history")).to_contain_text(shown_date(world.closed, "fr"))

        officer_row = page.locator(f'#officers tr[data-officer="{branch.officer_id}"]')
        await expect(officer_row).to_contain_text(branch.officer_name)
        await expect(officer_row).to_contain_text(money("3000.00", "fr"))
        await officer_row.locator("a").first.click()
        await expect(page).to_have_url(f"{live.console}/branches?office_id="
                                       f"{branch.office_id}&officer_id={branch.officer_id}")
        await expect(page.locator(".breadcrumb")).to_contain_text(branch.officer_id)
        await figures_match(page, by_officer)
        await shared.shot(page, "20-branch-dashboard-officer")
        await page.click("text=Feuille de collecte du jour")
        await expect(page.locator("h1")).to_contain_text("Feuille de collecte")


# ---------------------------------------------------------------- (b) the collection sheet


async def test_the_officers_sheet_is_recorded_once_and_the_branch_declares_its_cash(
        browser: Browser, live: LivePlatform, passwords: dict[str, str],
        world: World) -> None:
    agadir = world.agadir
    sheet_url = f"/collection-sheet?officer_id={agadir.officer_id}&date={agadir.meeting}"
    names = {m["id"]: m["full_name"] for m in agadir.members}
    async with signed_in(browser, live, passwords, "amina") as page:
        await page.goto(sheet_url)
        group = page.locator(f'section[data-group="{agadir.group["id"]}"]')
        for client_id, loan_id in agadir.loan_of.items():
            line = group.locator(f'tr[data-loan="{loan_id}"]')
            await expect(line).to_contain_text(names[client_id])
            await expect(line).to_contain_text(
                fr_amount(agadir.firsts[loan_id]["total"]))
        await expect(page.locator('[data-figure="expected"]')).to_have_text(
            money(agadir.expected, "fr"))

        # A second tab holds the same sheet, rendered before anything was recorded.
        again = await page.context.new_page()
        await again.goto(sheet_url)
        for loan_id, first in agadir.firsts.items():
            for tab in (page, again):
                await tab.locator(f'tr[data-loan="{loan_id}"] input[name=amount]').fill(
                    fr_amount(first["total"]))
        await shared.shot(page, "21-collection-sheet-cash")

        await page.click("button[data-action=record-cash]")
        await expect(page.locator("h1")).to_contain_text("Encaissements enregistrés")
        await expect(page.locator('[data-figure="recorded"]')).to_contain_text(
            f"3 ligne(s) enregistrée(s) pour {money(agadir.expected, 'fr')} ; 0 déjà")
        lines = page.locator("#recorded-lines tbody tr")
        await expect(lines).to_have_count(3)
        recorded = {await r.get_attribute("data-loan"): await r.locator("code").inner_text()
                    for r in await lines.all()}
        assert set(recorded) == set(agadir.firsts)

        # The same sheet recorded again from the other tab: nothing booked twice.
        await again.click("button[data-action=record-cash]")
        await expect(again.locator('[data-figure="recorded"]')).to_contain_text(
            f"0 ligne(s) enregistrée(s) pour {money('0.00', 'fr')} ; 3 déjà")
        twice = again.locator("#recorded-lines tbody tr")
        await expect(twice).to_have_count(3)
        assert {await r.get_attribute("data-loan"): await r.locator("code").inner_text()
                for r in await twice.all()} == recorded
        await shared.shot(again, "22-collection-sheet-recorded-twice")

        # The sheet now shows each line collected once, and no field to enter it again.
        await page.goto(sheet_url)
        for loan_id, first in agadir.firsts.items():
            await expect(page.locator(f'[data-collected="{loan_id}"]')).to_have_text(
                money(first["total"], "fr"))
        await expect(page.locator("#cash-entry input[name=amount]")).to_have_count(0)

    async with httpx.AsyncClient(timeout=20) as http:
        api = Api(live, http)

        async def paid_once() -> bool:
            for loan_id in agadir.firsts:
                schedule = await api.call("GET", "loans", f"/v1/loans/{loan_id}/schedule")
                if schedule["installments"][0]["status"] != "paid":
                    return False
                assert len(schedule["repayments"]) == 1, schedule["repayments"]
                assert D(schedule["installments"][1]["paid"]) == 0, schedule
            return True

        await until(paid_once, "each member's first installment paid once", timeout_s=90,
                    interval_s=0.5)

    # youssef, the branch manager, counts the branch's cash at day end: 25.00 short.
    declared = agadir.expected - SHORT
    async with signed_in(browser, live, passwords, "youssef") as page:
        await page.goto(f"/branch-cash?office_id={AGADIR}&date={agadir.meeting}")
        await expect(page.locator('[data-figure="expected"]')).to_have_text(
            money(agadir.expected, "fr"))
        await page.fill("input[name=declared]", fr_amount(declared))
        await page.fill("input[name=note]", "compté à la fermeture")
        await page.click("button[data-action=count-cash]")
        await expect(page.locator(".flash")).to_contain_text("Comptage de caisse enregistré")
        await expect(page.locator('[data-figure="declared"]')).to_have_text(
            money(declared, "fr"))
        await expect(page.locator('[data-figure="difference"]')).to_have_text(
            money(-SHORT, "fr"))
        await expect(page.locator('[data-figure="difference"]')).to_have_class(
            "value bad")
        await expect(page.locator(".badge.s-reconciled")).to_be_visible()
        await expect(page.locator("button[data-action=count-cash]")).to_have_count(0)
        await shared.shot(page, "23-branch-cash-difference")


# ---------------------------------------------------------------- (c) the group loan


async def test_the_group_loan_page_shows_members_schedules_and_the_saga(
        browser: Browser, live: LivePlatform, passwords: dict[str, str],
        world: World) -> None:
    agadir = world.agadir
    names = {m["id"]: m["full_name"] for m in agadir.members}
    async with signed_in(browser, live, passwords, "youssef") as page:
        await page.goto("/group-loans")
        await page.fill("input[name=id]", agadir.loan["id"])
        await page.click("form.filters button[type=submit]")
        await expect(page).to_have_url(f"{live.console}/group-loans/{agadir.loan['id']}")
        await expect(page.locator('[data-figure="total-principal"]')).to_have_text(
            money("3000.00", "fr"))
        members = page.locator("#group-members tbody tr")
        await expect(members).to_have_count(3)
        for client_id, loan_id in agadir.loan_of.items():
            row = page.locator(f'#group-members tr[data-loan="{loan_id}"]')
            await expect(row).to_contain_text(names[client_id])
            await expect(row.locator(".badge.s-active")).to_be_visible()
            schedule = page.locator(f'section[data-schedule="{loan_id}"]')
            await expect(schedule).to_contain_text(names[client_id])
            await expect(schedule.locator("tbody tr")).to_have_count(4)
            await expect(schedule.locator("tbody tr").first).to_contain_text(
                shown_date(agadir.firsts[loan_id]["due_date"], "fr"))
        await expect(page.locator('[data-figure="in-arrears"]')).to_have_text(
            "Aucun membre en retard")
        saga = page.locator("#group-saga")
        await expect(saga.locator(".badge.s-completed").first).to_be_visible()
        await expect(saga.locator(f'[data-saga="{agadir.loan["saga"]["id"]}"]')).to_be_visible()
        await expect(saga.locator("ol.timeline li")).not_to_have_count(0)
        await expect(saga.locator("ol.timeline .badge.s-completed").first).to_be_visible()
        await shared.shot(page, "24-group-loan")


# ---------------------------------------------------------------- (d) transfers


async def test_a_transfer_asked_by_one_operator_is_approved_by_another(
        browser: Browser, live: LivePlatform, passwords: dict[str, str], infra: Infra,
        world: World) -> None:
    """youssef (branch manager) asks to move a client of Agadir to the branch's mobile
    unit; the request waits; he cannot approve his own; nadia (head office) approves it;
    the unit's officer then finds the client, which before answered not found."""
    mover = world.mover
    unit_officer = bearer(world.unit_officer, world.unit, f"{AGADIR_PATH}/{world.unit}")
    as_youssef = {"Authorization": "Bearer " + shared.keycloak_token(
        infra, "youssef", passwords["youssef"])}
    async with httpx.AsyncClient(timeout=20) as http:
        api = Api(live, http)
        await api.call("GET", "clients", f"/v1/clients/{mover['id']}", headers=unit_officer,
                       expect=(404,))
        request: dict[str, Any] = await api.call(
            "POST", "clients", "/v1/transfers", headers=as_youssef, expect=(201,),
            json={"client_id": mover["id"], "to_office_id": world.unit,
                  "to_officer_id": world.unit_officer, "reason": "habite près du souk"})
    assert request["status"] == "pending"
    row = f'tr[data-request="{request["id"]}"]'
    queue = "/organisation/requests?kind=transfers&status=pending"

    async with signed_in(browser, live, passwords, "youssef") as page:
        await open_row(page, queue, row)
        mine = page.locator(row)
        await expect(mine).to_contain_text(mover["id"])
        await expect(mine).to_contain_text(world.unit)
        await expect(mine).to_contain_text("Votre demande")
        await mine.locator("button[data-action=approve-request]").click()
        refused = page.locator(".panel.problem").first
        await expect(refused).to_have_attribute("data-status", "403")
        await shared.shot(page, "25-transfer-maker-refused")

    async with signed_in(browser, live, passwords, "nadia") as page:
        await open_row(page, queue, row)
        waiting = page.locator(row)
        await expect(waiting).to_contain_text(mover["id"])
        await expect(waiting).to_contain_text(AGADIR)
        await expect(waiting).not_to_contain_text("Votre demande")
        await shared.shot(page, "26-transfers-awaiting-approval")
        await waiting.locator("button[data-action=approve-request]").click()
        await expect(page.locator(".flash")).to_contain_text("Demande approuvée")
        await expect(page.locator(row)).to_have_count(0)
        await open_row(page, "/organisation/requests?kind=transfers&status=approved", row)
        await expect(page.locator(row).locator(".badge.s-approved")).to_be_visible()

    async with httpx.AsyncClient(timeout=20) as http:
        api = Api(live, http)
        moved = await api.call("GET", "clients", f"/v1/clients/{mover['id']}")
        assert moved["office_id"] == world.unit and moved["officer_id"] == world.unit_officer

    # the unit's officer now finds the client in the console
    context = await browser.new_context(base_url=live.console, locale="fr-FR")
    try:
        page = await context.new_page()
        await shared.sign_in(page, unit_officer["Authorization"].removeprefix("Bearer "))
        await expect(page.locator(".operator")).to_be_visible()
        await page.goto(f"/clients/{mover['id']}")
        await expect(page.locator("h1")).to_contain_text(mover["full_name"])
        await expect(page.locator(".panel.problem")).to_have_count(0)
    finally:
        await context.close()


# ---------------------------------------------------------------- (e) access by office


async def test_a_loan_officer_sees_nothing_of_another_branch(
        browser: Browser, live: LivePlatform, passwords: dict[str, str],
        world: World) -> None:
    """amina's token is scoped to Agadir: the Zagora branch's clients, loans, group loan,
    dashboard and sheet answer not found, as for something that does not exist."""
    other = world.branch
    client, loan_id = other.members[0], other.loan["members"][0]["loan_id"]
    async with signed_in(browser, live, passwords, "amina") as page:
        # her own branch's client, for contrast
        own = world.agadir.members[0]
        await page.goto(f"/clients/{own['id']}")
        await expect(page.locator("h1")).to_contain_text(own["full_name"])

        await page.goto(f"/clients/{client['id']}")
        await expect(page.locator('.panel.problem[data-status="404"]').first).to_be_visible()
        await expect(page.locator("main")).not_to_contain_text(client["full_name"])
        await page.goto(f"/loans/{loan_id}")
        await expect(page.locator('.panel.problem[data-status="404"]').first).to_be_visible()
        await expect(page.locator("#schedule")).to_have_count(0)
        for path in (f"/group-loans/{other.loan['id']}",
                     f"/branches?office_id={other.office_id}",
                     f"/branches?office_id={other.office_id}&officer_id={other.officer_id}",
                     f"/collection-sheet?officer_id={other.officer_id}&date={other.meeting}",
                     f"/branch-cash?office_id={other.office_id}&date={other.meeting}"):
            resp = await page.goto(path)
            assert resp is not None and resp.status == 404, path
            await expect(page.locator('.panel.problem[data-status="404"]').first
                         ).to_be_visible()
            await expect(page.locator("main")).not_to_contain_text(other.officer_name)
            for member in other.members:
                await expect(page.locator("main")).not_to_contain_text(member["full_name"])
        await shared.shot(page, "27-other-branch-not-found")
        # the institution's dashboard shows her branch, not the other one
        await page.goto("/branches")
        await expect(page.locator(f'tr[data-office="{world.region}"]')).to_have_count(0)
