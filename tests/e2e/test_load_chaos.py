"""Scenario 5: hundreds of concurrent sagas while processes crash and the infrastructure
goes away.

A driver acts like many partner apps, an operator and a wallet at once (200
journeys under way at any moment, every call retried the way a real client
retries: the same Idempotency-Key, or a check of the state before doing it
again): each borrower is onboarded and verified, applies, is approved, and once
disbursed repays — in full (the loan closes) or in part. Meanwhile the chaos task
SIGKILLs each service in turn at a random moment and restarts it, stops Kafka for
20 s and restarts it, and restarts PostgreSQL (the last two only when this
machine manages them). New journeys keep starting until the last fault (at least
200 in all), so every fault meets a full load; each records how many were in
flight.

Afterwards: 20 borrowers who come once the faults are over all get their loan
and repay it; every saga is terminal (one caught by an outage past its deadline
ends visibly failed and compensated), each loan's books match its outstanding
principal, the ledger balances, each wallet at the simulator holds exactly what
was paid out to it (and is consistent), and each SMS that should exist exists
exactly once, none suppressed or failed.

``make soak`` runs the same with more sagas and more rounds of faults
(``NORIA_SOAK_SAGAS``, ``NORIA_SOAK_ROUNDS``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import string
import subprocess
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.bank import TERMINAL_SAGA_STATES, Bank, bearer
from tests.infra import ROOT, Infra

pytestmark = pytest.mark.e2e
log = logging.getLogger("noria.e2e.chaos")
D = Decimal
SAGAS = int(os.environ.get("NORIA_SOAK_SAGAS", "200"))
ROUNDS = int(os.environ.get("NORIA_SOAK_ROUNDS", "1"))
CONCURRENCY = int(os.environ.get("NORIA_SOAK_CONCURRENCY", "200"))
SERVICES = ("clients", "loans", "payments", "notifications")
KAFKA_DOWN_S = 20.0
AFTER_FAULTS = 20  # journeys started once every fault is over
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
# How the loan ended -> the SMS its borrower must have received, each exactly once.
EXPECTED_SMS = {
    "closed": ["kyc_verified", "loan_closed", "loan_disbursed"],
    "active": ["kyc_verified", "loan_disbursed", "repayment_received"],
    "disbursement_failed": ["disbursement_failed", "kyc_verified"],
    "rejected": ["kyc_verified"],  # the credit reservation ran past its deadline
}


class Gave(Exception):
    """A request answered with a status the caller must look at."""

    def __init__(self, resp: httpx.Response) -> None:
        super().__init__(f"{resp.status_code} {resp.text[:300]}")
        self.resp = resp


@dataclass
class Journey:
    index: int
    partner: str
    principal: D
    full_repayment: bool
    phone: str = ""
    client_id: str = ""
    loan_id: str = ""
    status: str = ""
    repaid: D = field(default_factory=lambda: D("0.00"))
    steps: list[str] = field(default_factory=list)


def national_id() -> str:
    """A CIN (one or two letters, up to six digits) unlikely to be taken on a long-lived
    database: 676 prefixes x 900 000 numbers."""
    letters = "".join(random.choices(string.ascii_uppercase, k=2))
    return f"{letters}{random.randint(100000, 999999)}"


@dataclass
class Driver:
    bank: Bank
    http: httpx.AsyncClient
    deadline_s: float = 240.0
    retries: Counter[str] = field(default_factory=Counter)

    async def send(self, method: str, svc: str, path: str, *, headers: dict[str, str],
                   ok: tuple[int, ...] = (200, 201, 202), **kw: Any) -> Any:
        """Call until an answer in ``ok`` (returned) or a final one (``Gave``): connection
        errors and 5xx — a process down, the database restarting — are retried."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline_s
        delay = 0.2
        while True:
            try:
                resp = await self.http.request(method, self.bank.url(svc, path),
                                               headers=headers, **kw)
            except httpx.HTTPError as exc:
                self.retries[f"{svc} {type(exc).__name__}"] += 1
            else:
                if resp.status_code in ok:
                    return resp.json() if resp.content else None
                if resp.status_code not in RETRYABLE and not (
                        resp.status_code == 409 and "in progress" in resp.text):
                    raise Gave(resp)
                self.retries[f"{svc} {resp.status_code}"] += 1
            if loop.time() > give_up:
                raise AssertionError(f"{method} {svc}{path}: no answer in {self.deadline_s}s")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    async def until(self, probe: Any, what: str, timeout_s: float | None = None) -> Any:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + (timeout_s or self.deadline_s)
        while loop.time() < give_up:
            found = await probe()
            if found:
                return found
            await asyncio.sleep(0.5)
        raise AssertionError(f"{what}: not reached in {timeout_s or self.deadline_s}s")

    # -- one borrower's journey --------------------------------------------------------
    async def run(self, j: Journey, product_id: str) -> None:
        partner = bearer("partner", partner=j.partner)
        phone = f"07{random.randint(0, 99_999_999):08d}"
        client = await self.send("POST", "clients", "/v1/clients", ok=(201,), headers={
            **partner, "Idempotency-Key": f"onboard-{j.index}-{uuid.uuid4().hex}"}, json={
            "full_name": f"Youssef Alaoui {j.index}", "phone": phone,
            "national_id": national_id(), "date_of_birth": "1990-07-02",
            "language": random.choice(["fr", "ar"]), "sms_consent": True,
            "region": "Souss-Massa"})
        j.client_id, j.phone = client["id"], client["phone"]  # the phone in E.164
        j.steps.append("onboarded")
        try:
            await self.send("POST", "clients", f"/v1/clients/{j.client_id}/kyc",
                            headers=self.bank.checker, json={"decision": "verified"})
        except Gave as exc:  # our first try took effect, its answer was lost
            assert exc.resp.status_code == 409, exc
        j.steps.append("verified")

        apply_key = f"apply-{uuid.uuid4().hex}"
        body = {"client_id": j.client_id, "product_id": product_id,
                "principal": str(j.principal), "term": 1}

        async def applied() -> str | None:
            try:
                loan = await self.send("POST", "loans", "/v1/loans", ok=(201, 200),
                                       headers={**partner, "Idempotency-Key": apply_key},
                                       json=body)
            except Gave as exc:  # loans learns of the client from clients.events
                assert exc.resp.status_code == 422 and "client" in exc.resp.text, exc
                return None
            return str(loan["id"])

        j.loan_id = await self.until(applied, f"loan application of {j.client_id}")
        j.steps.append("applied")
        try:
            await self.send("POST", "loans", f"/v1/loans/{j.loan_id}/approve",
                            headers=self.bank.checker, json={})
        except Gave as exc:
            assert exc.resp.status_code == 409, exc
            assert (await self.loan(j.loan_id))["status"] != "pending", exc
        j.steps.append("approved")

        loan = await self.until(lambda: self.settled(j.loan_id), f"saga of {j.loan_id}",
                                timeout_s=self.deadline_s + 60)
        j.status = loan["status"]
        j.steps.append(j.status)
        if j.status != "active":
            return
        amount = j.principal if j.full_repayment else D("100.00")
        await self.send("POST", "payments", "/v1/repayments", ok=(202,), headers={
            **bearer("wallet", partner="sim"), "Idempotency-Key": f"repay-{j.loan_id}"}, json={
            "loan_id": j.loan_id, "amount": str(amount), "currency": "MAD",
            "payer_msisdn": j.phone, "external_ref": f"w-{j.loan_id}"})
        j.repaid = amount
        j.steps.append("repaid")
        want = D("0.00") if j.full_repayment else j.principal - amount

        async def repayment_applied() -> dict[str, Any] | None:
            loan = await self.loan(j.loan_id)
            return loan if D(loan["outstanding"]["principal"]) == want else None

        loan = await self.until(repayment_applied, f"repayment of {j.loan_id}")
        if j.full_repayment:
            loan = await self.until(lambda: self.settled(j.loan_id, "closed"),
                                    f"closing of {j.loan_id}")
        j.status = loan["status"]
        j.steps.append(j.status)

    async def loan(self, loan_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.send("GET", "loans", f"/v1/loans/{loan_id}",
                                                headers=self.bank.maker)
        return found

    async def settled(self, loan_id: str, *statuses: str) -> dict[str, Any] | None:
        loan = await self.loan(loan_id)
        wanted = statuses or ("active", "disbursement_failed", "rejected")
        return loan if loan["status"] in wanted else None


# -- the faults ---------------------------------------------------------------------------

def pg_version() -> str:
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True,
                         check=True).stdout
    versions = [line.split()[0] for line in out.splitlines()
                if len(line.split()) > 1 and line.split()[1] == "noria"]
    assert versions, out
    return sorted(versions, key=lambda v: [int(x) for x in v.split(".")])[-1]


async def run(*cmd: str) -> None:
    done = await asyncio.to_thread(subprocess.run, list(cmd), cwd=ROOT, capture_output=True,
                                   text=True, timeout=180)
    assert done.returncode == 0, f"{cmd}: {done.stdout}\n{done.stderr}"


@dataclass
class Pace:
    """What the faults met: each is recorded with the number of journeys under way."""

    faults: list[str] = field(default_factory=list)
    in_flight: int = 0
    done: bool = False

    async def fault(self, what: str) -> None:
        self.faults.append(f"{what} [{self.in_flight} sagas in flight]")

    async def finish(self) -> None:
        self.done = True


async def chaos(bank: Bank, infra: Infra, rounds: int, pace: Pace) -> None:
    rng = random.Random()
    try:
        await asyncio.sleep(rng.uniform(3, 6))  # let the load build up
        for _ in range(rounds):
            for svc in rng.sample(SERVICES, len(SERVICES)):
                await asyncio.sleep(rng.uniform(1, 5))
                await pace.fault(f"SIGKILL {svc}")
                await bank.platform.kill_and_restart(svc, down_for_s=rng.uniform(0, 2))
            if infra.managed_locally:
                await asyncio.sleep(rng.uniform(1, 4))
                await pace.fault("Kafka stopped")
                await run(str(ROOT / "scripts/infra/kafka.sh"), "down")
                await asyncio.sleep(KAFKA_DOWN_S)
                await run(str(ROOT / "scripts/infra/kafka.sh"), "up")
                await pace.fault(f"Kafka restarted after {KAFKA_DOWN_S:.0f}s")
                await asyncio.sleep(rng.uniform(3, 8))
                await pace.fault("PostgreSQL restarted")
                await run("pg_ctlcluster", pg_version(), "noria", "restart", "-m", "fast")
            # One more crash while everything catches up.
            await asyncio.sleep(rng.uniform(2, 5))
            svc = rng.choice(SERVICES)
            await pace.fault(f"SIGKILL {svc}")
            await bank.platform.kill_and_restart(svc)
    finally:
        await pace.finish()


@pytest.mark.disruptive
@pytest.mark.timeout(max(900, 600 * ROUNDS + SAGAS))
async def test_concurrent_sagas_survive_crashes_and_outages(bank: Bank, infra: Infra) -> None:
    product = await bank.product(annual_rate="0.00", max_term=1, min_principal="500.00")
    partners = [f"partner-load-{uuid.uuid4().hex[:6]}" for _ in range(5)]
    journeys: list[Journey] = []
    pace = Pace()
    faults = pace.faults
    limits = httpx.Limits(max_connections=CONCURRENCY * 2)
    async with httpx.AsyncClient(timeout=20.0, limits=limits) as http:
        driver = Driver(bank, http)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(j: Journey) -> None:
            pace.in_flight += 1
            try:
                await driver.run(j, product)
            finally:
                pace.in_flight -= 1
                gate.release()

        # The load lasts as long as the faults: at least SAGAS journeys, and new ones keep
        # starting (CONCURRENCY under way) until the last fault, however fast the machine.
        chaos_task = asyncio.create_task(chaos(bank, infra, ROUNDS, pace))
        tasks: list[asyncio.Task[None]] = []
        while len(journeys) < SAGAS or not pace.done:
            await gate.acquire()
            i = len(journeys)
            j = Journey(i, partners[i % len(partners)],
                        D(random.choice(["500.00", "800.00", "1250.00", "2000.00"])),
                        full_repayment=i % 2 == 0)
            journeys.append(j)
            tasks.append(asyncio.create_task(one(j)))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await chaos_task
        errors = [f"#{j.index} {j.steps} {r!r}" for j, r in zip(journeys, results, strict=True)
                  if isinstance(r, BaseException)]
        assert errors == [], "\n".join(errors[:20])
        under_fire = Counter(j.status for j in journeys)
        # After the faults, the bank works again: borrowers who come now all get their
        # loan and repay it (under fire, a saga may instead run past its deadline and
        # end visibly failed, which the invariants below check like any other end).
        after = [Journey(len(journeys) + i, partners[i % len(partners)], D("800.00"),
                         full_repayment=i % 2 == 0) for i in range(AFTER_FAULTS)]
        await asyncio.gather(*(driver.run(j, product) for j in after))
        assert Counter(j.status for j in after) == {
            "closed": (AFTER_FAULTS + 1) // 2, "active": AFTER_FAULTS // 2}, \
            [(j.index, j.steps) for j in after]
        log.info("faults injected: %s; retried calls: %s", faults, dict(driver.retries))
        print(f"\nfaults injected: {faults}\nretried calls: {dict(driver.retries)}\n"
              f"journeys under fire: {len(journeys)}, outcomes: {under_fire}; "
              f"after the faults: {len(after)}, all closed or active")
        await verify(bank, driver, journeys + after)
        # Whatever a request met during the outages, it was told 503 (retry), never 500.
        assert not [k for k in driver.retries if k.endswith(" 500")], driver.retries

    assert sum(f.startswith("PostgreSQL restarted") for f in faults) == (
        ROUNDS if infra.managed_locally else 0)
    assert sum(f.startswith("SIGKILL") for f in faults) == ROUNDS * (len(SERVICES) + 1)
    # Every fault met sagas under way: the load was paced by the faults, not over before them.
    assert all(not f.endswith("[0 sagas in flight]") for f in faults), faults


async def verify(bank: Bank, driver: Driver, journeys: list[Journey]) -> None:
    outcomes = Counter(j.status for j in journeys)
    # Sagas caught by an outage end visibly (failed, compensated), never half-way.
    assert set(outcomes) <= set(EXPECTED_SMS), outcomes

    async def none_open() -> bool:
        # A failed payout's loan turns disbursement_failed a moment before its saga ends
        # (the credit release completes it): give the compensations time to finish.
        sagas = await driver.send("GET", "loans", "/v1/sagas", headers=bank.maker,
                                  params={"limit": 1})
        return not {k for k, v in sagas["counts"].items()
                    if k not in TERMINAL_SAGA_STATES and v}

    await driver.until(none_open, "every saga in a terminal state", timeout_s=120)

    async def check(j: Journey) -> None:
        await bank.check_invariants([j.loan_id])
        wallet = await bank.wallet(j.phone)
        paid_out = j.principal if j.status in ("active", "closed") else D("0.00")
        assert wallet["consistent"] is True, wallet
        assert D(wallet["payouts"]) == paid_out, (j.loan_id, j.status, wallet)
        assert D(wallet["refunds"]) == D("0.00"), (j.loan_id, wallet)

        async def all_sms() -> list[str] | None:
            sms = await bank.messages(client_id=j.client_id)
            templates = sorted(m["template"] for m in sms)
            return templates if templates == EXPECTED_SMS[j.status] else None

        try:
            await driver.until(all_sms, f"SMS of {j.client_id}", timeout_s=60)
        except AssertionError:
            sms = await bank.messages(client_id=j.client_id)
            raise AssertionError((j.loan_id, j.status, EXPECTED_SMS[j.status],
                                  [(m["template"], m["status"]) for m in sms])) from None
        sms = await bank.messages(client_id=j.client_id)
        # Each of them sent: none suppressed or failed, even when notifications met a
        # loan's event before its client's registration after a restart (it holds it).
        unsent = [(m["template"], m["status"], m["reason"]) for m in sms
                  if m["status"] in ("suppressed", "failed")]
        assert unsent == [], (j.loan_id, unsent)

    gate = asyncio.Semaphore(20)

    async def bounded(j: Journey) -> None:
        async with gate:
            await check(j)

    results = await asyncio.gather(*(bounded(j) for j in journeys), return_exceptions=True)
    problems = [f"#{j.index} {r!r}" for j, r in zip(journeys, results, strict=True)
                if isinstance(r, BaseException)]
    assert problems == [], "\n".join(problems[:20])
