"""The one retry policy of the platform: capped exponential backoff with jitter.

Built on ``stamina`` (which also counts retries in Prometheus and logs them), so
the inbox, the services' provider calls and any loop that waits for the database
retry the same way::

    policy = RetryPolicy(attempts=3, wait_initial_s=0.2, wait_max_s=5.0)
    async for attempt in policy.attempts(on=is_transient):
        with attempt:
            await call_provider()

The n-th wait is ``min(wait_max_s, wait_initial_s * 2 ** (n - 1) + U(0, jitter_s))``;
once ``attempts`` are spent the last error is raised. ``on`` is an exception type, a
tuple of them, or a predicate: an error it does not accept is raised at once.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import stamina

RetryOn = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int | None = 3
    """How many times the block runs at most (None: until it succeeds)."""
    wait_initial_s: float = 0.2
    wait_max_s: float = 5.0
    jitter_s: float | None = None
    """The random part added to each wait; by default as much as the first wait."""
    timeout_s: float | None = None
    """Give up after this long in all (None: only ``attempts`` bounds it)."""

    @property
    def jitter(self) -> float:
        return self.wait_initial_s if self.jitter_s is None else self.jitter_s

    def attempts_for(self, on: RetryOn) -> AsyncIterator[stamina.Attempt]:
        """``async for attempt in policy.attempts_for(on): with attempt: ...``"""
        iterator: AsyncIterator[stamina.Attempt] = aiter(stamina.retry_context(
            on=on, attempts=self.attempts, timeout=self.timeout_s,
            wait_initial=self.wait_initial_s, wait_max=self.wait_max_s,
            wait_jitter=self.jitter, wait_exp_base=2))
        return iterator

    def backoff_s(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based), for a loop that
        cannot be written as a retry block (a consumer pausing a partition)."""
        jitter = random.uniform(0, self.jitter) if self.jitter else 0.0
        try:
            return float(min(self.wait_max_s,
                             self.wait_initial_s * 2 ** max(attempt - 1, 0) + jitter))
        except OverflowError:
            return self.wait_max_s


WAIT_FOR_DATABASE = RetryPolicy(attempts=None, wait_initial_s=0.5, wait_max_s=5.0)
"""Waiting out a database outage: forever, never faster than every half second."""
