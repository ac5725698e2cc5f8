"""How long a refused callback is told to wait: the queue over the rate it drains at."""

from __future__ import annotations

from services.payments.domain.admission import retry_after_s
from services.payments.state import InFlight


def test_the_wait_grows_with_the_queue_and_shrinks_with_the_rate() -> None:
    assert retry_after_s(40, 20.0, 1, 30) == 2
    assert retry_after_s(400, 20.0, 1, 30) == 20
    assert retry_after_s(400, 50.0, 1, 30) == 8
    assert retry_after_s(41, 20.0, 1, 30) == 3  # whole seconds, rounded up


def test_the_wait_stays_within_its_floor_and_ceiling() -> None:
    assert retry_after_s(0, 20.0, 1, 30) == 1
    assert retry_after_s(5000, 20.0, 1, 30) == 30
    assert retry_after_s(3, 0.0, 1, 30) == 3  # nothing finished yet: one a second
    assert retry_after_s(1, 100.0, 2, 30) == 2


def test_the_rate_is_what_finished_in_the_last_window() -> None:
    in_flight = InFlight(window_s=10.0)
    assert in_flight.finished_per_s(100.0) == 0.0
    for i in range(50):  # 50 over the 10 s before t=100
        in_flight.done(90.0 + i * 0.2)
    assert 4.9 <= in_flight.finished_per_s(100.0) <= 5.1
    assert in_flight.finished_per_s(125.0) == 0.0  # long idle: none recent
    in_flight.done(200.0)
    in_flight.done(200.5)
    assert in_flight.finished_per_s(200.5) == 2.0  # since the first, at least a second
