"""What the handlers, routes and the payout worker share (built in bootstrap)."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

from services.payments.provider import Providers
from services.payments.settings import PaymentsSettings
from shared.envelope import Contract
from shared.uow import UnitOfWork


@dataclass
class Deps:
    settings: PaymentsSettings
    providers: Providers = field(init=False)
    # Set when a payout is recorded (LISTEN on the payouts channel): the worker wakes.
    payout_wakeup: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    # Provider callbacks being handled now (admission control: callback_max_in_flight).
    callbacks_in_flight: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.providers = Providers(self.settings.providers)

    def emit(self, uow: UnitOfWork, message: Contract, *, key: str) -> None:
        uow.emit(message, key=key)

    def callback_url(self, provider: str) -> str:
        base = self.settings.callback_base_url.rstrip("/")
        return f"{base}/v1/mobile-money/{provider}/callbacks"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
