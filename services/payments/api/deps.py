"""What the routes share: the runtime, the payments settings and what the composition
root put in the runtime's state (the provider clients, the callbacks in flight)."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from services.payments import state
from services.payments.providers.gsma import Providers
from services.payments.settings import PaymentsSettings
from shared.app import Runtime


def runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


def settings(request: Request) -> PaymentsSettings:
    return cast(PaymentsSettings, runtime(request).settings)


def providers(request: Request) -> Providers:
    return state.providers(runtime(request).state)


def callbacks_in_flight(request: Request) -> state.InFlight:
    return state.callbacks_in_flight(runtime(request).state)
