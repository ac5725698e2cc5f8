"""A night's accruals posted concurrently: loans' close of business publishes the
date's ``InterestAccrued`` in batches keyed by the date (one partition), so the
consumer only stages each batch (:func:`stage`, in the inbox's transaction, fast) and
payments' accrual workers post the staged batches several at once — ``accrual_workers``
on each replica, sharing the work through a lease (``shared.leases.claim_sql``).

Per batch, two steps, each one transaction holding the batch's row:

1. **accrued** — its accruals posted (``run_accruals``: once per (date, batch) and per
   (date, loan); nothing under the cash basis);
2. **done** — its provisions posted (``run_provisions``), which waits until every batch
   of the date (the event's ``batches``) is accrued.

Only the earliest date not complete is worked on, so dates go forward: provisions never
go back in time and a loan's nights are posted in order whichever batch carries it. A
worker that dies mid-batch rolls its transaction back; its lease expires
(``accrual_lease_s``) and another worker posts the batch. A batch whose posting fails
is kept and tried again after a capped backoff, its error recorded; its date (and the
dates after it) wait for it. Statements say which dates up to theirs are still being
posted, and a period with such a date cannot be closed; a batch of a period already
closed is refused at staging (dead-lettered), never staged.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from decimal import Decimal

import asyncpg
import orjson

from services.payments.handlers.accounting import LoanDay, run_accruals, run_provisions
from services.payments.handlers.leased_jobs import run_rounds
from services.payments.repository import Conn
from services.payments.repository import accrual_batches as repo
from services.payments.repository import gl as gl_repo
from services.payments.repository import periods as periods_repo
from services.payments.repository.ledger import PeriodClosed
from services.payments.settings import PaymentsSettings
from shared.contracts.loans import InterestAccrued
from shared.db import database_unavailable
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.accruals")

SOURCE = "InterestAccrued"


def encode(loans: Sequence[LoanDay]) -> str:
    """A batch's loans as staged (amounts as decimal strings)."""
    return orjson.dumps([[ln.loan_id, str(ln.interest), ln.days_in_arrears, ln.product_id,
                          ln.office_id, ln.restructured, str(ln.fees_due)]
                         for ln in loans]).decode()


def decode(text: str | None) -> list[LoanDay]:
    return [LoanDay(loan_id, Decimal(interest), days, product, office, restructured,
                    Decimal(fees))
            for loan_id, interest, days, product, office, restructured, fees
            in orjson.loads(text or "[]")]


class InconsistentBatch(ValueError):
    """A batch outside its date's count of batches, or of a night older than one already
    staged: the event is not what loans sends (dead-lettered, as any handler failure)."""


async def stage(conn: Conn, day: dt.date, batch: int, batches: int,
                loans: Sequence[LoanDay], event_id: str) -> bool:
    """Stage a batch for the accrual workers; False when it was staged already."""
    if batch >= batches:
        raise InconsistentBatch(f"InterestAccrued {day} batch {batch} of {batches}")
    closed = await periods_repo.closed_period_of(conn, day)
    if closed is not None:
        # a night of a month closed meanwhile (loans published it before the close,
        # payments had not staged it yet): refused here, so it is dead-lettered and
        # visible, as any posting into a closed period, instead of failing at every
        # attempt of the workers and holding every later night behind it
        raise PeriodClosed(f"InterestAccrued {day} batch {batch}: period {closed} is "
                           "closed; nothing dated in it can be posted",
                           field="business_date")
    later = await repo.later_night(conn, day)
    if later is not None:
        # nights go forward: a night older than one already staged would never be
        # provisioned (provisions go forward in time) and would hold every later night
        raise InconsistentBatch(f"InterestAccrued {day} batch {batch} arrives after the "
                                f"night of {later}; nights are posted in date order")
    fresh = await repo.stage(conn, day, batch, batches, encode(loans), len(loans), event_id)
    known = await conn.fetchval(
        "SELECT batches FROM accrual_dates WHERE business_date = $1", day)
    if known != batches:
        raise InconsistentBatch(f"InterestAccrued {day} batch {batch} says {batches} "
                                f"batches, the date's first batch said {known}")
    return fresh


async def on_interest_accrued(uow: UnitOfWork, msg: InterestAccrued, env: Envelope) -> None:
    """Loans' close of business: the batch is staged for the accrual workers (its
    accruals under the accrual basis — the day's interest and the fees falling due that
    day, ``fees_due`` from version 2 of the event — then, once the whole date is
    accrued, its provisions). A batch delivered or published again is staged once."""
    loans = [LoanDay(ln.loan_id, ln.interest, ln.days_in_arrears, ln.product_id,
                     ln.office_id, ln.restructured, ln.fees_due)
             for ln in msg.loans if ln.interest >= 0]
    if len(loans) != len(msg.loans):
        log.warning("InterestAccrued %s batch %s: negative interest ignored for %d loan(s)",
                    msg.business_date, msg.batch, len(msg.loans) - len(loans))
    await stage(uow.conn, msg.business_date, msg.batch, msg.batches, loans,
                str(env.event_id))


async def post_claimed(conn: Conn, claimed: asyncpg.Record) -> str | None:
    """Post a claimed batch's next step in the caller's transaction: its accruals, or
    (every batch of its date accrued) its provisions. What was done, or None when the
    batch moved on meanwhile (a worker whose lease had expired finished it)."""
    row = await repo.hold(conn, claimed["id"])
    if row is None or row["status"] != claimed["status"]:
        return None
    day, batch = row["business_date"], row["batch"]
    loans = decode(row["loans"])
    if row["status"] == "staged":
        setting = await gl_repo.settings(conn)
        if setting["accounting_basis"] == "accrual":
            await run_accruals(conn, day, loans, batch=batch, source=SOURCE)
        await repo.mark_accrued(conn, row["id"])
        return "accrued"
    await run_provisions(conn, day, loans, batch=batch, source=SOURCE)
    if await repo.mark_done(conn, row["id"], day):
        log.info("accruals %s: every batch accrued and provisioned", day)
    return "done"


async def work_once(pool: asyncpg.Pool, *, lease_s: float, retry_s: float,
                    retry_max_s: float) -> dict[str, int]:
    """Claim one batch and post its next step; the counts of what was done."""
    async with pool.acquire() as conn:
        claimed = await repo.claim(conn, lease_s)
    if claimed is None:
        return {}
    try:
        async with pool.acquire() as conn, conn.transaction():
            done = await post_claimed(conn, claimed)
    except Exception as exc:
        if database_unavailable(exc):
            raise  # nobody's fault: the lease expires and the batch is posted later
        wait = min(retry_max_s, retry_s * 2 ** max(0, claimed["attempts"] - 1))
        log.exception("accruals %s batch %s (%s): posting failed (attempt %d); trying "
                      "again in %.0f s", claimed["business_date"], claimed["batch"],
                      claimed["status"], claimed["attempts"], wait)
        async with pool.acquire() as conn:
            await repo.failed(conn, claimed["id"], f"{type(exc).__name__}: {exc}", wait)
        return {"failed": 1}
    return {done or "skipped": 1}


async def drain(pool: asyncpg.Pool, settings: PaymentsSettings) -> None:
    """One accrual worker: post staged batches while there are any, poll when idle."""
    async def round_() -> dict[str, int]:
        try:
            counts = await work_once(pool, lease_s=settings.accrual_lease_s,
                                     retry_s=settings.accrual_retry_s,
                                     retry_max_s=settings.accrual_retry_max_s)
        except Exception as exc:  # the database away, or a bug: the lease expires
            if not database_unavailable(exc):
                log.exception("accrual worker: a round failed")
            else:
                log.warning("accrual worker: %r; trying again", exc)
            return {}
        counts.pop("failed", None)  # a failure waits for its backoff: not work found
        return counts
    await run_rounds(round_, settings.accrual_poll_s, "accrual worker")
