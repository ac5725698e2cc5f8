"""Composition root of the notifications service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.notifications.settings import NotificationsSettings
from shared.app import ServiceSpec, create_app
from shared.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: NotificationsSettings | None = None) -> ServiceSpec:
    settings = settings or load_settings(NotificationsSettings)
    return ServiceSpec(
        name="notifications",
        settings=settings,
        routers=[],
        consumers=[],
        migrations_dir=MIGRATIONS,
        title="Noria notifications service",
    )


def app() -> FastAPI:
    return create_app(build_spec())
