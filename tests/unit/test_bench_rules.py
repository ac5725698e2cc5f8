"""The benchmark's arrival process and what counts as a sustained step."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from bench.load import poisson
from bench.sagas import Request, _summarise, sustained


class TestBenchmarkRules:
    def test_arrivals_are_a_poisson_process(self) -> None:
        offsets = poisson(100.0, 60.0, seed=1)
        assert 5400 < len(offsets) < 6600
        assert offsets == sorted(offsets) and 0 <= offsets[0] and offsets[-1] < 60.0
        gaps = [b - a for a, b in itertools.pairwise(offsets)]
        mean = sum(gaps) / len(gaps)
        var = sum((g - mean) ** 2 for g in gaps) / len(gaps)
        assert abs(mean - 0.01) < 0.001
        assert abs(var ** 0.5 / mean - 1.0) < 0.1  # exponential: deviation = mean
        assert poisson(100.0, 60.0, seed=1) == offsets  # reproducible

    def _step(self, latencies: Sequence[float | None], start: float = 1000.0) -> dict[str, Any]:
        reqs = [Request(start + i * 0.1, key=str(i), ok=True) for i in range(len(latencies))]
        done = {r.key: r.t0 + lat for r, lat in zip(reqs, latencies, strict=True)
                if lat is not None}
        step = {"offered_rate": 10.0, "seconds": 20.0, "sent": len(reqs), "run": 1}
        return _summarise(step, reqs, lambda r: done.get(r.key), 25000.0, start)

    def test_a_growing_queue_in_the_last_ten_seconds_fails_the_step(self) -> None:
        # 200 sagas over 20 s; the first half fast, the last 10 s at 1.5 s
        s = self._step([0.05] * 100 + [1.5] * 100)
        assert s["tail_p99_ms"] == 1500.0
        assert sustained([{**s, "runs": [s]}]) is None
        ok = self._step([0.05] * 200)
        assert sustained([{**ok, "runs": [ok]}]) is not None

    def test_a_rate_is_sustained_only_if_both_runs_are(self) -> None:
        good, bad = self._step([0.05] * 200), self._step([0.05] * 100 + [1.5] * 100)
        assert sustained([{**good, "runs": [good, bad]}]) is None
        assert sustained([{**good, "runs": [good, good]}]) is not None

    def test_an_unfinished_saga_in_the_tail_fails_the_step(self) -> None:
        s = self._step([0.05] * 199 + [None])
        assert s["tail_p99_ms"] is None
        assert sustained([{**s, "runs": [s]}]) is None

    def test_a_callback_refused_503_counts_once_the_provider_s_retry_completes_it(
            self) -> None:
        """The provider retries a refused callback: the saga completes late, not never."""
        start = 1000.0
        refused = Request(start, key="r", ok=True, refused=True)
        failed = Request(start + 0.1, key="f", ok=False, error="callback 500")
        done = {"r": start + 6.0, "f": start + 0.2}
        step = {"offered_rate": 10.0, "seconds": 20.0, "sent": 2, "run": 1}
        s = _summarise(step, [refused, failed], lambda r: done.get(r.key), 25000.0, start)
        assert (s["completed"], s["incomplete"], s["refused_then_retried"]) == (1, 1, 1)
        assert s["p50_ms"] == 6000.0  # from the first attempt, the retry's wait included
        assert s["errors"] == {"callback 500": 1}

    def test_a_steps_database_sessions_are_averaged_over_its_own_samples(self) -> None:
        from collections import Counter

        from bench.waits import Snapshot, WaitSampler, describe

        before = Snapshot(10, Counter({"cpu": 10, "lock:tuple": 40}), Counter({"SELECT a": 40}))
        after = Snapshot(30, Counter({"cpu": 30, "lock:tuple": 200, "idle in transaction": 60}),
                         Counter({"SELECT a": 160, "SELECT b": 40}))
        window = WaitSampler.window(before, after)
        assert window == {"samples": 20,
                          "sessions": {"lock:tuple": 8.0, "idle in transaction": 3.0,
                                       "cpu": 1.0},
                          "waiting_for_a_lock": {"SELECT a": 6.0, "SELECT b": 2.0}}
        assert describe(window) == "8 lock:tuple, 3 idle in transaction, 1 cpu"
        assert WaitSampler.window(after, after) == {}

    def test_a_steps_kafka_requests_are_counted_per_completed_saga(self) -> None:
        from bench.kafka_requests import describe, per_saga

        before = {"Fetch": 1000, "Produce": 400, "OffsetCommit": 50, "Heartbeat": 7,
                  "partitions:TotalFetchRequests": 12000}
        after = {"Fetch": 1450, "Produce": 550, "OffsetCommit": 60, "Heartbeat": 7,
                 "partitions:TotalFetchRequests": 17400, "ListOffsets": 3}
        per = per_saga(before, after, 100)
        assert per == {"Fetch": 4.5, "ListOffsets": 0.03, "OffsetCommit": 0.1,
                       "Produce": 1.5, "partitions:TotalFetchRequests": 54.0}
        assert describe(per) == ("fetches 4.5, partitions fetched 54, produce requests 1.5,"
                                 " offset commits 0.1 per saga")
        # a broker restarted between the two readings, a reading missing, no saga done
        assert per_saga(after, before, 100) is None
        assert per_saga(None, after, 100) is None
        assert per_saga(before, after, 0) is None
