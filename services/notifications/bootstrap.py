"""Composition root of the notifications service."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from fastapi import FastAPI

from services.notifications.api import build_router
from services.notifications.domain.messages import QuietHours, RetryPolicy
from services.notifications.handlers import Clock, Deps, expire_held, handlers, system_clock
from services.notifications.sender import Sender, listen_for_queued
from services.notifications.settings import NotificationsSettings
from shared.app import ConsumerSpec, Runtime, ServiceSpec, create_app
from shared.settings import load_settings
from shared.uow import UnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"
TOPICS = ["clients.events", "loans.events", "payments.events"]


def build_deps(settings: NotificationsSettings, clock: Clock = system_clock) -> Deps:
    return Deps(
        clock=clock,
        quiet=QuietHours(settings.quiet_start_hour, settings.quiet_end_hour),
        retry=RetryPolicy(max_attempts=settings.max_attempts, base_s=settings.retry_base_s,
                          cap_s=settings.retry_cap_s, throttle_s=settings.throttle_backoff_s),
        held_max_age=dt.timedelta(seconds=settings.held_trigger_max_age_s),
    )


def build_spec(settings: NotificationsSettings | None = None,
               clock: Clock = system_clock) -> ServiceSpec:
    settings = settings or load_settings(NotificationsSettings)
    deps = build_deps(settings, clock)
    s = settings

    queued = asyncio.Event()

    async def sending_worker(runtime: Runtime) -> None:
        sender = Sender(runtime.pool, deps, s, wakeup=queued)
        runtime.state["sender"] = sender
        await sender.run()

    async def sms_wakeups(runtime: Runtime) -> None:
        await listen_for_queued(s.database_url, runtime.schema, queued)

    async def held_sweeper(runtime: Runtime) -> None:
        while True:
            async with UnitOfWork(runtime.pool) as uow:
                settled = await expire_held(uow, deps)
                await uow.commit()
            # a full batch: more may be waiting; otherwise nothing to do for a while
            await asyncio.sleep(1.0 if settled >= 100 else s.held_sweep_interval_s)

    return ServiceSpec(
        name="notifications",
        settings=settings,
        routers=[build_router(deps)],
        consumers=[ConsumerSpec(group="notifications", topics=TOPICS, handlers=handlers(deps))],
        background=[sending_worker, sms_wakeups, held_sweeper],
        migrations_dir=MIGRATIONS,
        title="Noria notifications service",
        description="SMS in French and Arabic over SMPP and an HTTP aggregator.",
    )


def app() -> FastAPI:
    return create_app(build_spec())
