"""What the composition root hands the runtime (``ServiceSpec.state``), and typed reads
of it for the routes and the payout jobs.

- ``providers``: one HTTP client per configured mobile-money provider;
- ``payout_wakeup``: set when a payout is recorded (``LISTEN``), wakes the payout worker;
- ``callbacks_in_flight``: provider callbacks being handled now (admission control,
  ``callback_max_in_flight``);
- ``clock``: the time payouts are judged by (deadlines, doubt); a test moves it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

from services.payments.providers.gsma import Providers
from services.payments.settings import PaymentsSettings
from shared.clock import Clock, system_clock

PROVIDERS = "providers"
PAYOUT_WAKEUP = "payout_wakeup"
CALLBACKS_IN_FLIGHT = "callbacks_in_flight"
CLOCK = "clock"


@dataclass
class InFlight:
    """Requests being handled now, and when the recent ones finished (one event loop: no
    lock needed)."""

    count: int = 0
    finished: deque[float] = field(default_factory=deque)
    window_s: float = 10.0

    def done(self, now: float) -> None:
        self.finished.append(now)
        self._forget_before(now - self.window_s)

    def finished_per_s(self, now: float) -> float:
        """Requests finished per second over the last ``window_s`` (or since the first)."""
        self._forget_before(now - self.window_s)
        if not self.finished:
            return 0.0
        return len(self.finished) / max(min(self.window_s, now - self.finished[0]), 1.0)

    def _forget_before(self, since: float) -> None:
        while self.finished and self.finished[0] < since:
            self.finished.popleft()


def initial(settings: PaymentsSettings, clock: Clock = system_clock) -> dict[str, Any]:
    return {
        PROVIDERS: Providers(settings.providers),
        PAYOUT_WAKEUP: asyncio.Event(),
        CALLBACKS_IN_FLIGHT: InFlight(),
        CLOCK: clock,
    }


def providers(state: dict[str, Any]) -> Providers:
    return cast(Providers, state[PROVIDERS])


def payout_wakeup(state: dict[str, Any]) -> asyncio.Event:
    return cast(asyncio.Event, state[PAYOUT_WAKEUP])


def callbacks_in_flight(state: dict[str, Any]) -> InFlight:
    return cast(InFlight, state[CALLBACKS_IN_FLIGHT])


def clock(state: dict[str, Any]) -> Clock:
    return cast(Clock, state.get(CLOCK, system_clock))
