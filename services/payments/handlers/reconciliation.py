"""Reconciliation of one provider's business day: our books against its statement.

The business day is the institution's (``Africa/Casablanca``), and the provider's
statement is pulled for that day in that zone. A **run** (:func:`run_day`, on demand or
by the scheduler):

1. pulls the statement (no database connection held while the provider is asked);
2. settles from it what it proves: a payout or refund still open on our side
   (pending, submitted, in doubt) that the statement lists completed is completed,
   as the provider's own word; a wallet-reported repayment still unconfirmed that it
   lists (same amount) is confirmed and credited;
3. matches what remains (pure: :mod:`services.payments.domain.reconciliation`) and
   raises each difference — ours only, theirs only, amount mismatch — once per
   provider, day and reference: a row in ``reconciliation_alerts``, a metric and a
   ``ReconciliationMismatch`` event, in one transaction. An open alert a later run no
   longer finds is closed by it.

:func:`reconcile_day` is the same comparison without any write (``GET``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import uuid
from decimal import Decimal
from typing import Any, cast

import asyncpg

from services.payments import state
from services.payments.domain.payouts import Action, ProviderView, Seen
from services.payments.domain.reconciliation import Item, alerts, reconcile
from services.payments.handlers.collections import credit
from services.payments.handlers.payouts import resolve
from services.payments.metrics import (
    RECONCILIATION_ALERTS,
    RECONCILIATION_OPEN_ALERTS,
    RECONCILIATION_RUNS,
)
from services.payments.providers.gsma import ProviderClient, ProviderUnanswered
from services.payments.repository import reconciliation as repo
from services.payments.settings import PaymentsSettings
from shared.app import Runtime
from shared.clock import BUSINESS_TZ, Clock, business_date, system_clock
from shared.contracts.payments import ReconciliationMismatch
from shared.errors import DomainError
from shared.money import parse_amount
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.reconciliation")

OPEN_PAYOUT = ("pending", "submitted", "in_doubt")
NOT_CREDITED = ("unconfirmed", "rejected_unconfirmed")


class ProviderStatementUnavailable(DomainError):
    title = "Provider statement unavailable"
    code = "provider_unavailable"


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The business day ``day`` as UTC instants ``[start, end)``."""
    start = dt.datetime.combine(day, dt.time(), BUSINESS_TZ)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), BUSINESS_TZ)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


async def fetch_statement(client: ProviderClient, day: dt.date) -> list[dict[str, Any]]:
    """The provider's statement of the business ``day`` (cash-ins left out)."""
    headers = {"Accept": "application/json"}
    if client.config.api_key is not None:
        headers["X-API-Key"] = client.config.api_key.get_secret_value()
    try:
        resp = await client.http.get(
            f"/sim/statements/{day.isoformat()}", headers=headers,
            params={"tz": str(BUSINESS_TZ), "format": "json"})
        resp.raise_for_status()
        entries = resp.json().get("entries", [])
    except ProviderUnanswered as exc:
        raise ProviderStatementUnavailable(
            f"{client.name}'s statement for {day} is unavailable: {exc}",
            field="provider") from None
    except ValueError as exc:
        raise ProviderStatementUnavailable(
            f"{client.name}'s statement for {day} is unavailable: {type(exc).__name__}",
            field="provider") from None
    return [e for e in entries if isinstance(e, dict) and e.get("type") != "cashin"]


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


async def _linked(conn: Any, provider: str, entries: list[dict[str, Any]]
                  ) -> dict[str, asyncpg.Record]:
    """Statement reference → our payout or payment it names."""
    refs = [str(e["transactionReference"]) for e in entries]
    cids = [c for c in (_uuid(e.get("clientCorrelationId")) for e in entries) if c]
    reqs = [str(e["requestReference"]) for e in entries if e.get("requestReference")]
    rows = await repo.linked(conn, provider, refs, cids, reqs)
    by_ref = {r["ref"]: r for r in rows if r["ref"]}
    by_cid = {r["correlation_id"]: r for r in rows if r["correlation_id"]}
    by_req = {r["our_ref"]: r for r in rows if r["source"] == "payout"}
    out: dict[str, asyncpg.Record] = {}
    for e in entries:
        ref = str(e["transactionReference"])
        found = (by_cid.get(_uuid(e.get("clientCorrelationId")))
                 or (by_req.get(str(e["requestReference"])) if e.get("requestReference")
                     else None)
                 or by_ref.get(ref))
        if found is not None:
            out[ref] = found
    return out


def _our_item(row: asyncpg.Record, reference: str) -> Item:
    amount: Decimal = row["amount"]
    if row["source"] == "payout" and row["status"] == "failed":
        amount = Decimal("0.00")  # on our books it never left
    elif row["source"] == "payment" and row["status"] in NOT_CREDITED:
        amount = Decimal("0.00")  # not credited (yet)
    return Item(reference, "collection" if row["source"] == "payment" else row["kind"],
                amount, {"our_reference": row["our_ref"], "loan_id": row["loan_id"],
                         "status": row["status"]})


async def compare(pool: Any, provider: str, day: dt.date, entries: list[dict[str, Any]]
                  ) -> dict[str, Any]:
    """Our side (the day's movements, and whatever the statement names) against it."""
    start, end = day_bounds(day)
    async with pool.acquire() as conn:
        linked = await _linked(conn, provider, entries)
        day_rows = await repo.our_day(conn, provider, start, end)
    ours: dict[str, Item] = {}
    linked_ids = {r["id"] for r in linked.values()}
    for row in day_rows:
        if row["id"] not in linked_ids:
            ref = row["ref"] or row["our_ref"]
            ours[ref] = _our_item(row, ref)
    for ref, row in linked.items():
        ours[ref] = _our_item(row, ref)
    theirs = [Item(str(e["transactionReference"]), str(e.get("purpose") or e.get("type")),
                   parse_amount(str(e["amount"])),
                   {"msisdn": e.get("msisdn"), "provider_reference_kind": e.get("purpose")})
              for e in entries]
    result = reconcile(list(ours.values()), theirs)
    for row in result["theirs_only"]:  # the loan a collection names, for the alert
        entry = next(e for e in entries if str(e["transactionReference"]) == row["reference"])
        if entry.get("purpose") == "collection" and entry.get("account"):
            row["loan_id"] = str(entry["account"])
    return result


async def reconcile_day(pool: Any, client: ProviderClient, day: dt.date) -> dict[str, Any]:
    """The comparison alone (nothing settled, nothing raised)."""
    return await compare(pool, client.name, day, await fetch_statement(client, day))


async def settle_from_statement(pool: Any, settings: PaymentsSettings, provider: str,
                                entries: list[dict[str, Any]], clock: Clock
                                ) -> dict[str, int]:
    """Settle what the statement proves: open payouts it lists completed, unconfirmed
    wallet reports it lists (same amount). Each in its own short transaction."""
    async with pool.acquire() as conn:
        linked = await _linked(conn, provider, entries)
    by_ref = {str(e["transactionReference"]): e for e in entries}
    done = {"payouts": 0, "collections": 0}
    for ref, row in linked.items():
        entry = by_ref[ref]
        uow = UnitOfWork(pool, topic_prefix=settings.topic_prefix)
        async with uow:
            if row["source"] == "payout" and row["status"] in OPEN_PAYOUT \
                    and entry.get("status") == "completed":
                # The provider's statement is its word (what the payouts'
                # settle_from_evidence(…, "completed", …, "reconciliation") does).
                settled = await resolve(uow, settings, row["id"],
                                        ProviderView(Seen.COMPLETED, reference=ref),
                                        Action.COMPLETE, "reconciliation")
                done["payouts"] += int(settled is not None and settled.status.value
                                       == "completed")
            elif row["source"] == "payment" and row["status"] in NOT_CREDITED \
                    and parse_amount(str(entry["amount"])) == row["amount"]:
                done["collections"] += int(await credit(uow, row["id"], clock) is not None)
            await uow.commit()
    return done


async def run_day(pool: Any, settings: PaymentsSettings, client: ProviderClient,
                  day: dt.date, *, clock: Clock = system_clock, trigger: str = "operator"
                  ) -> dict[str, Any]:
    """Reconcile ``client``'s provider for the business ``day``: settle, match, raise.

    Idempotent per provider and day: an alert is raised (and announced) once."""
    provider = client.name
    try:
        entries = await fetch_statement(client, day)
    except ProviderStatementUnavailable:
        RECONCILIATION_RUNS.labels(provider, trigger, "provider_unavailable").inc()
        raise
    settled = await settle_from_statement(pool, settings, provider, entries, clock)
    result = await compare(pool, provider, day, entries)
    found = alerts(result)
    raised: list[str] = []
    uow = UnitOfWork(pool, topic_prefix=settings.topic_prefix)
    async with uow:
        for a in found:
            alert_id = await repo.raise_alert(uow.conn, provider, day, a,
                                              {"trigger": trigger})
            if alert_id is None:
                continue
            raised.append(str(alert_id))
            RECONCILIATION_ALERTS.labels(provider, a.mismatch).inc()
            uow.emit(ReconciliationMismatch(
                loan_id=a.loan_id, provider=provider, business_date=day,
                mismatch=a.mismatch, reference=a.reference, ours=a.ours, theirs=a.theirs),
                key=a.loan_id or f"reconciliation:{provider}")
        cleared = await repo.close_cleared(uow.conn, provider, day,
                                           [(a.mismatch, a.reference) for a in found])
        summary = {**result["summary"], "settled_payouts": settled["payouts"],
                   "confirmed_collections": settled["collections"],
                   "alerts_raised": len(raised), "alerts_cleared": cleared}
        await repo.record_run(uow.conn, provider, day, clock(), summary)
        open_now = await repo.open_count(uow.conn, provider)
        await uow.commit()
    RECONCILIATION_OPEN_ALERTS.labels(provider).set(open_now)
    RECONCILIATION_RUNS.labels(provider, trigger,
                               "reconciled" if result["summary"]["reconciled"]
                               else "mismatches").inc()
    log.info("reconciliation %s %s (%s): %s", provider, day, trigger, summary)
    return {**result, "summary": result["summary"], "run": {
        **{k: v for k, v in summary.items() if k not in result["summary"]},
        "alerts_raised_ids": raised}}


# -- the scheduler (one replica at a time) -----------------------------------------------

LEASE = "payments.reconciliation"


def due_days(now: dt.datetime, last_today: dt.datetime | None,
             last_yesterday: dt.datetime | None, settings: PaymentsSettings
             ) -> list[dt.date]:
    """Which business days to reconcile now: today every ``reconciliation_interval_s``;
    yesterday once, ``reconciliation_yesterday_after_s`` after midnight."""
    today = business_date(now)
    due: list[dt.date] = []
    if last_today is None or (now - last_today).total_seconds() >= \
            settings.reconciliation_interval_s:
        due.append(today)
    midnight, _ = day_bounds(today)
    closes = midnight + dt.timedelta(seconds=settings.reconciliation_yesterday_after_s)
    if now >= closes and (last_yesterday is None or last_yesterday < closes):
        due.append(today - dt.timedelta(days=1))
    return due


async def schedule_once(pool: Any, settings: PaymentsSettings, runtime_state: dict[str, Any],
                        holder: str, clock: Clock) -> list[tuple[str, dt.date]]:
    """One tick: if this replica holds the lease, run what is due for every provider."""
    async with pool.acquire() as conn:
        if not await repo.take_lease(conn, LEASE, holder, settings.reconciliation_lease_s):
            return []
    ran: list[tuple[str, dt.date]] = []
    now = clock()
    today = business_date(now)
    for name in settings.providers:
        client = state.providers(runtime_state).get(name)
        if client is None:
            continue
        async with pool.acquire() as conn:
            last_today = await repo.last_run(conn, name, today)
            last_yesterday = await repo.last_run(conn, name, today - dt.timedelta(days=1))
        for day in due_days(now, last_today, last_yesterday, settings):
            try:
                await run_day(pool, settings, client, day, clock=clock, trigger="schedule")
                ran.append((name, day))
            except (ProviderStatementUnavailable, asyncpg.PostgresError, OSError) as exc:
                log.warning("reconciliation of %s %s failed: %r; next tick", name, day, exc)
    return ran


async def reconciliation_scheduler(runtime: Runtime) -> None:
    """The background job: every replica ticks, the lease holder reconciles."""
    settings = cast(PaymentsSettings, runtime.settings)
    if not settings.reconciliation_enabled:
        return
    clock = cast(Clock, runtime.state.get("clock", system_clock))
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    while True:
        try:
            await schedule_once(runtime.pool, settings, runtime.state, holder, clock)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("reconciliation scheduler: %r; next tick", exc)
        await asyncio.sleep(settings.reconciliation_tick_s)
