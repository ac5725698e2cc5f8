"""Composition root of the notifications service."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from services.notifications import jobs
from services.notifications.api import messages, opt_outs, stats, templates
from services.notifications.consumers import consumer_spec
from services.notifications.handlers.policies import POLICIES, Policies
from services.notifications.settings import NotificationsSettings
from shared.app import ServiceSpec, create_app
from shared.clock import Clock, system_clock
from shared.settings import load_settings
from shared.singleton import singleton

MIGRATIONS = Path(__file__).parent / "migrations"

# What the platform's retention job prunes besides its own tables: delivery receipts
# once applied to their parts (applied_at past the age). An unapplied receipt has no
# applied_at and is never pruned: it may still be waiting for its submission's record.
RETENTION = [("receipts", "applied_at")]


def build_policies(settings: NotificationsSettings, clock: Clock = system_clock) -> Policies:
    return Policies(clock=clock, quiet=settings.quiet_hours(), retry=settings.retry_policy(),
                    held_max_age=settings.held_max_age())


def build_spec(settings: NotificationsSettings | None = None,
               clock: Clock = system_clock) -> ServiceSpec:
    settings = settings or load_settings(NotificationsSettings)
    policies = build_policies(settings, clock)
    return ServiceSpec(
        name="notifications",
        settings=settings,
        routers=[messages.router, opt_outs.router, templates.router, stats.router],
        consumers=[consumer_spec(policies)],
        background=[jobs.sending_worker, jobs.sms_wakeups, singleton(jobs.held_sweeper)],
        migrations_dir=MIGRATIONS,
        retention=RETENTION,
        title="Noria notifications service",
        description="SMS in French and Arabic over SMPP and an HTTP aggregator.",
        state={POLICIES: policies, jobs.QUEUED: asyncio.Event()},
    )


def app() -> FastAPI:
    return create_app(build_spec())
