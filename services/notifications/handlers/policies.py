"""What the handlers decide by: the clock and the policies the settings configure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from services.notifications.domain.held import DEFAULT_MAX_AGE
from services.notifications.domain.messages import QuietHours, RetryPolicy
from services.notifications.repository.templates import TemplateCache
from shared.clock import Clock, system_clock

POLICIES = "policies"
"""The key of the :class:`Policies` in ``Runtime.state`` (set by the composition root)."""


@dataclass(frozen=True)
class Policies:
    clock: Clock = system_clock
    quiet: QuietHours = field(default_factory=QuietHours)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    held_max_age: dt.timedelta = DEFAULT_MAX_AGE
    # the templates in memory, checked against their generation on every use
    templates: TemplateCache = field(default_factory=TemplateCache, compare=False)
