"""What the routes share: the runtime and the clients settings."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from services.clients.settings import ClientsSettings
from shared.app import Runtime


def runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


def settings(request: Request) -> ClientsSettings:
    return cast(ClientsSettings, runtime(request).settings)
