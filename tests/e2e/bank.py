"""Acting on the running bank only through its public APIs and the simulators.

What a partner app, a wallet and an operator would do — onboard, verify, apply,
approve, repay — plus the money invariants checked after every scenario.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from shared.auth import ROLE_SCOPES
from tests.e2e.harness import Platform
from tests.identity import mint_token

D = Decimal
TERMINAL_SAGA_STATES = frozenset({"completed", "credit_rejected", "compensated", "failed"})
T = TypeVar("T")


def bearer(role: str, *, sub: str | None = None, partner: str | None = None) -> dict[str, str]:
    token = mint_token(sub=sub or f"{role}-{uuid.uuid4().hex[:6]}",
                       scopes=ROLE_SCOPES[role], partner_id=partner)
    return {"Authorization": f"Bearer {token}"}


def office_bearer(office_id: str, office_path: str, *, sub: str | None = None,
                  role: str = "operator") -> dict[str, str]:
    """A token scoped to an office and its subtree (a branch's loan officer, a regional
    manager): the ``office_id``/``office_path`` claims the identity provider issues."""
    token = mint_token(sub=sub or f"{role}-{uuid.uuid4().hex[:6]}", scopes=ROLE_SCOPES[role],
                       office_id=office_id, office_path=office_path)
    return {"Authorization": f"Bearer {token}"}


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = 60.0,
                     every_s: float = 0.25, what: str = "condition") -> T:
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last = await probe()
        except (httpx.HTTPError, AssertionError) as exc:
            last = exc
        else:
            if last is not None and last is not False:
                return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"{what} not reached within {timeout_s:.0f}s (last: {last!r})")


# Phone numbers in sequence from a random start: unique within a run (a benchmark's seed
# onboards 11 000 clients; random draws among 10^8 numbers collided), unlikely to meet
# another run's.
_phones = itertools.count(random.randint(0, 99_999_999))


def next_phone() -> str:
    return f"06{next(_phones) % 100_000_000:08d}"


# National ids (CIN: two letters, six digits) the same way: random letters and numbers
# among the 676 x 900 000 collided once a long-lived database held some 100 000 clients.
_cins = itertools.count(random.randint(0, 676 * 900_000 - 1))


def next_national_id() -> str:
    letters, number = divmod(next(_cins) % (676 * 900_000), 900_000)
    first, second = divmod(letters, 26)
    return f"{chr(65 + first)}{chr(65 + second)}{100_000 + number}"


@dataclass
class Borrower:
    client_id: str
    partner: str
    phone: str
    language: str


@dataclass
class Bank:
    platform: Platform
    http: httpx.AsyncClient
    maker: dict[str, str]
    checker: dict[str, str]

    @classmethod
    def connect(cls, platform: Platform) -> Bank:
        return cls(platform, httpx.AsyncClient(timeout=15.0),
                   bearer("operator", sub="operator-amina"),
                   bearer("operator", sub="operator-youssef"))

    def url(self, service: str, path: str) -> str:
        """``path`` at one of the service's replicas (each in turn)."""
        return f"{self.platform.url(service)}{path}"

    async def request(self, method: str, service: str, path: str, *,
                      client: httpx.AsyncClient | None = None, **kw: Any) -> httpx.Response:
        """One request to the service, sent to its replicas in turn; a replica that
        refuses the connection (killed, restarting) is skipped for the next, as a load
        balancer would. Nothing was sent to a replica that refused: no retry is unsafe.
        A replica killed while it held the request (the connection dropped before an
        answer) is retried on the next only when retrying is safe: a read, or a write
        carrying an Idempotency-Key, whose repeat gets the first answer."""
        urls = self.platform.urls(service)
        headers = {k.lower() for k in (kw.get("headers") or {})}
        repeatable = method.upper() in ("GET", "HEAD") or "idempotency-key" in headers
        for i, base in enumerate(urls):
            try:
                return await (client or self.http).request(method, f"{base}{path}", **kw)
            except httpx.ConnectError:
                if i == len(urls) - 1:
                    raise
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
                if not repeatable or i == len(urls) - 1:
                    raise
        raise AssertionError("unreachable")

    async def call(self, method: str, service: str, path: str, *, headers: dict[str, str],
                   expect: int | tuple[int, ...] = 200, **kw: Any) -> Any:
        resp = await self.request(method, service, path, headers=headers, **kw)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert resp.status_code in wanted, (
            f"{method} {service}{path}: {resp.status_code} {resp.text}")
        return resp.json() if resp.content else None

    # -- a partner onboards, an operator verifies -------------------------------
    async def onboard(self, *, language: str = "fr", partner: str | None = None,
                      verify: bool = True) -> Borrower:
        partner = partner or f"partner-{uuid.uuid4().hex[:8]}"
        phone = next_phone()
        body = {
            "full_name": f"Fatima Zahra {uuid.uuid4().hex[:5]}",
            "national_id": next_national_id(), "phone": phone,
            "date_of_birth": "1987-03-21", "language": language,
            "sms_consent": True, "region": "Drâa-Tafilalet",
        }
        for _ in range(5):
            resp = await self.request("POST", "clients", "/v1/clients", json=body,
                                      headers=bearer("partner", partner=partner))
            # The database may hold another run's client with this phone or national id:
            # the next one.
            if resp.status_code != 409:
                break
            problem = resp.json()
            if "existing_client_id" in problem:
                body["phone"] = next_phone()
            elif any(e.get("field") == "national_id" for e in problem.get("errors") or []):
                body["national_id"] = next_national_id()
            else:
                break
        assert resp.status_code == 201, f"POST clients/v1/clients: {resp.status_code} {resp.text}"
        client = resp.json()
        if verify:
            await self.call("POST", "clients", f"/v1/clients/{client['id']}/kyc",
                            headers=self.checker, json={"decision": "verified"})
        return Borrower(client["id"], partner, client["phone"], language)

    async def product(self, **overrides: Any) -> str:
        body: dict[str, Any] = {
            "name": f"Tijara {uuid.uuid4().hex[:4]}", "interest_method": "declining_balance",
            "amortization": "equal_installments", "frequency": "monthly",
            "annual_rate": "0.24", "min_principal": "500.00", "max_principal": "50000.00",
            "min_term": 1, "max_term": 24, "overpayment_tolerance": "0.00",
        }
        body.update(overrides)
        product = await self.call("POST", "loans", "/v1/products", expect=201, json=body,
                                  headers=self.maker)
        return str(product["id"])

    async def apply(self, who: Borrower, product_id: str, principal: str, term: int) -> str:
        headers = bearer("partner", partner=who.partner)
        body = {"client_id": who.client_id, "product_id": product_id,
                "principal": principal, "term": term}

        async def try_apply() -> str | None:
            resp = await self.request("POST", "loans", "/v1/loans", json=body,
                                      headers=headers)
            if resp.status_code == 201:
                return str(resp.json()["id"])
            # Loans learns of a new client from clients.events a moment later.
            assert resp.status_code == 422 and "client" in resp.text, resp.text
            return None

        return await eventually(try_apply, timeout_s=30, what="loan application accepted")

    async def approve(self, loan_id: str) -> None:
        await self.call("POST", "loans", f"/v1/loans/{loan_id}/approve", headers=self.checker,
                        json={})

    async def loan(self, loan_id: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.call("GET", "loans", f"/v1/loans/{loan_id}",
                                               headers=self.maker)
        return body

    async def wait_status(self, loan_id: str, *statuses: str, timeout_s: float = 60.0
                          ) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            loan = await self.loan(loan_id)
            return loan if loan["status"] in statuses else None

        return await eventually(probe, timeout_s=timeout_s,
                                what=f"loan {loan_id} in {statuses}")

    # -- the wallet side ------------------------------------------------------------
    async def wallet(self, phone: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.call(
            "GET", "mobile-money-sim", f"/sim/wallets/{phone}", headers={})
        return body

    async def repay_from_wallet(self, who: Borrower, loan_id: str, amount: str) -> None:
        await self.call("POST", "mobile-money-sim", "/sim/collections", headers={},
                        expect=201, json={"msisdn": who.phone, "amount": amount,
                                          "reference": loan_id})

    async def cash_in(self, phone: str, amount: str) -> None:
        await self.call("POST", "mobile-money-sim", "/sim/cash-in", headers={}, expect=201,
                        json={"msisdn": phone, "amount": amount})

    async def sim_config(self, **change: Any) -> None:
        await self.call("POST", "mobile-money-sim", "/sim/config", headers={}, json=change)

    # -- the institution's days ---------------------------------------------------------
    async def business_date(self) -> date:
        body = await self.call("GET", "loans", "/v1/business-date", headers=self.maker)
        return date.fromisoformat(body["business_date"])

    async def close_business(self, day: date, *, timeout_s: float = 300.0) -> dict[str, Any]:
        """Close of business for ``day`` (the nights missed before it caught up first), as
        an operator asks it: the job started, then polled until it has succeeded."""
        run = await self.call("POST", "loans", "/v1/close-of-business", headers=self.maker,
                              expect=(200, 202), json={"business_date": day.isoformat()})

        async def done() -> dict[str, Any] | None:
            now: dict[str, Any] = await self.call(
                "GET", "loans", f"/v1/close-of-business/{run['run_id']}", headers=self.maker)
            return now if now["status"] in ("succeeded", "failed") else None

        ended = await eventually(done, timeout_s=timeout_s, every_s=0.5,
                                 what=f"close of business {day}")
        assert ended["status"] == "succeeded", ended
        return ended

    async def credit(self, client_id: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.call(
            "GET", "clients", f"/v1/clients/{client_id}/credit", headers=self.maker)
        return body

    # -- what reached the borrower's phone --------------------------------------------
    async def messages(self, *, loan_id: str | None = None, client_id: str | None = None
                       ) -> list[dict[str, Any]]:
        params = {"loan_id": loan_id} if loan_id else {"client_id": client_id}
        body: list[dict[str, Any]] = await self.call(
            "GET", "notifications", "/v1/messages", headers=self.maker, params=params)
        return body

    async def wait_sms(self, client_id: str, template: str, count: int = 1,
                       timeout_s: float = 60.0) -> list[dict[str, Any]]:
        async def probe() -> list[dict[str, Any]] | None:
            found = [m for m in await self.messages(client_id=client_id)
                     if m["template"] == template
                     and m["status"] in ("submitted", "delivered")]
            return found if len(found) >= count else None

        return await eventually(probe, timeout_s=timeout_s,
                                what=f"{count} x {template} SMS for {client_id}")

    # -- savings ------------------------------------------------------------------------
    async def savings_product(self, **overrides: Any) -> str:
        """A voluntary savings product (``overrides`` change its terms)."""
        body: dict[str, Any] = {"name": f"Épargne libre {uuid.uuid4().hex[:4]}",
                                "kind": "voluntary", "annual_rate": "0.0365",
                                "withholding_tax_rate": "0.20"}
        body.update(overrides)
        product = await self.call("POST", "savings", "/v1/savings/products", expect=201,
                                  json=body, headers=self.maker)
        return str(product["id"])

    async def savings_account(self, account_id: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.call(
            "GET", "savings", f"/v1/savings/accounts/{account_id}", headers=self.maker)
        return body

    async def savings_books(self, account_id: str) -> dict[str, Any]:
        """Payments' view of a savings account: its deposit liability and the withdrawals
        recorded and not final (``withdrawals_in_flight``)."""
        body: dict[str, Any] = await self.call(
            "GET", "payments", f"/v1/ledger/savings/{account_id}", headers=self.maker)
        return body

    async def save_from_wallet(self, phone: str, reference: str, amount: str) -> str:
        """The client tops its wallet up and pays ``amount`` into the savings account whose
        ``reference`` (``SAV-<account id>``) it gives; the provider's transaction reference."""
        await self.cash_in(phone, amount)
        paid = await self.call("POST", "mobile-money-sim", "/sim/collections", headers={},
                               expect=201, json={"msisdn": phone, "amount": amount,
                                                 "reference": reference})
        return str(paid["transactionReference"])

    async def withdrawal_payouts(self, days: Iterable[date]) -> Counter[str]:
        """How many payouts the provider completed per savings withdrawal id, from its own
        statements for ``days`` (Africa/Casablanca): payments sends a withdrawal's payout
        with the request reference ``withdrawal:<withdrawal id>``. A statement lists a
        transaction even while the provider's status API still denies it."""
        paid: Counter[str] = Counter()
        for day in days:
            statement = await self.call(
                "GET", "mobile-money-sim", f"/sim/statements/{day.isoformat()}", headers={},
                params={"tz": "Africa/Casablanca"})
            for entry in statement["entries"]:
                ref = entry.get("requestReference") or ""
                if entry["type"] == "disbursement" and ref.startswith("withdrawal:"):
                    paid[ref.removeprefix("withdrawal:")] += 1
        return paid

    async def check_savings_invariants(self, account_ids: list[str]) -> None:
        """Once no withdrawal of theirs is in flight: for every account, savings' ledger
        balance equals its deposit liability in payments' ledger, nothing is held, and the
        trial balance is zero."""
        trial = await self.call("GET", "payments", "/v1/ledger/trial-balance",
                                headers=self.maker)
        assert trial["balanced"] is True, trial
        for account_id in account_ids:
            mine = await self.savings_account(account_id)
            books = await self.savings_books(account_id)
            liability = D(books["deposit_liability"]) if books["exists"] else D("0.00")
            assert D(books["withdrawals_in_flight"]) == D("0.00"), (account_id, books)
            assert D(mine["held_balance"]) == D("0.00"), (account_id, mine)
            assert D(mine["ledger_balance"]) == liability, (account_id, mine, books)

    # -- invariants -----------------------------------------------------------------
    async def check_invariants(self, loan_ids: list[str]) -> None:
        """The money invariants of the whole platform, checked through the APIs.

        The ledger balances at every instant. Loans and payments agree once each has
        consumed the other's events: loans applies a repayment before payments moves it
        out of suspense, so a loan read right after its repayment may be ahead of the
        books. Each loan is read again until they agree, failing with the last
        disagreement if they do not within 30 s.
        """
        trial = await self.call("GET", "payments", "/v1/ledger/trial-balance",
                                headers=self.maker)
        assert trial["balanced"] is True, trial
        for loan_id in loan_ids:
            await eventually(lambda loan_id=loan_id: self._agrees(loan_id), timeout_s=30.0,
                             what=f"loans, the books and the sagas agreeing on {loan_id}")

    async def _agrees(self, loan_id: str) -> bool:
        loan = await self.loan(loan_id)
        books = await self.call("GET", "payments", f"/v1/loans/{loan_id}/portfolio-balance",
                                headers=self.maker)
        on_books = D(books["portfolio_balance"]) if books["exists"] else D("0.00")
        owed = D(loan["outstanding"]["principal"])
        if loan["status"] == "written_off":
            owed = D("0.00")
        assert on_books == owed, (loan_id, loan["status"], on_books, owed)
        sagas = await self.call("GET", "loans", "/v1/sagas", headers=self.maker,
                                params={"loan_id": loan_id})
        open_sagas = [s for s in sagas["items"] if s["state"] not in TERMINAL_SAGA_STATES]
        assert open_sagas == [], f"saga of {loan_id} not in a terminal state: {open_sagas}"
        return True
