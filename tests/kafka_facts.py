"""Waiting for facts, not for time: the one Kafka reader of the test suite and the
barriers tests wait on before they assert.

- :class:`TopicReader` reads topics in the background (from their end, or from the
  start) and keeps every record; ``wait_for`` returns once the records a test expects
  are there, with a message naming what never came.
- :func:`read_topic` reads a topic from the start until ``expect`` records arrived.
- :func:`until` polls an async check until it holds (the generic barrier).
- :func:`consumed_all` waits until an :class:`~shared.inbox.InboxConsumer` has committed
  every record the topics hold now: duplicates included, so "the duplicate took no
  effect" is asserted after the duplicate was read, not after a guess at how long that
  takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.envelope import Envelope
from shared.inbox import InboxConsumer

T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T]], what: str, timeout_s: float = 30.0,
                interval_s: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not so after {timeout_s:.0f}s (last: {value!r})")
        await asyncio.sleep(interval_s)


@dataclass(frozen=True)
class Record:
    topic: str
    """The topic with the reader's ``strip_prefix`` removed."""
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: dict[str, bytes]
    env: Envelope | None
    """The envelope, or None when the value is not one (a poison record)."""

    @property
    def type(self) -> str | None:
        return None if self.env is None else self.env.type

    @property
    def payload(self) -> dict[str, Any]:
        return {} if self.env is None else self.env.payload


def _record(r: Any, strip_prefix: str) -> Record:
    try:
        env: Envelope | None = Envelope.from_bytes(r.value)
    except Exception:
        env = None
    return Record(r.topic.removeprefix(strip_prefix), r.partition, r.offset,
                  r.key.decode() if r.key is not None else None, r.value,
                  {k: v for k, v in (r.headers or ())}, env)


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """Each partition's end offset now (the offset the next record will take)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics
               for p in sorted(await _partitions(consumer, t))]
        return dict(await consumer.end_offsets(tps)) if tps else {}
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    # A consumer's cluster metadata tracks only the topics it was told about: add the
    # topic to the client's metadata first, then wait until the broker reports it.
    deadline = time.monotonic() + 10
    while True:
        await consumer._client.add_topic(topic)
        parts = consumer._client.cluster.partitions_for_topic(topic)
        if parts:
            return set(parts)
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {topic} has no partitions (does it exist?)")
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)


class TopicReader:
    """Every record published on ``topics`` since it started (``start_at="end"``) or
    since the topics began (``"beginning"``)."""

    def __init__(self, bootstrap: str, topics: Sequence[str], *,
                 start_at: Literal["end", "beginning"] = "end", strip_prefix: str = "") -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.start_at = start_at
        self.strip_prefix = strip_prefix
        self.seen: list[Record] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> TopicReader:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        self._consumer = consumer
        tps = [TopicPartition(t, p) for t in self.topics
               for p in sorted(await _partitions(consumer, t))]
        consumer.assign(tps)
        if self.start_at == "beginning":
            await consumer.seek_to_beginning(*tps)
        else:
            for tp, offset in (await consumer.end_offsets(tps)).items():
                consumer.seek(tp, offset)   # pinned now, before the test produces anything
        self._task = asyncio.create_task(self._read(consumer))
        return self

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                self.seen.extend(_record(r, self.strip_prefix) for r in records)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def __aenter__(self) -> TopicReader:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    def matching(self, type_: str | None = None, *, key: str | None = None,
                 topic: str | None = None, **payload: Any) -> list[Record]:
        return [r for r in list(self.seen)
                if (type_ is None or r.type == type_) and (key is None or r.key == key)
                and (topic is None or r.topic == topic)
                and all(r.payload.get(k) == v for k, v in payload.items())]

    async def wait_for(self, type_: str | None = None, *, count: int = 1,
                       timeout_s: float = 30.0, key: str | None = None,
                       topic: str | None = None, **payload: Any) -> list[Record]:
        """The matching records once there are ``count`` of them."""
        async def enough() -> list[Record]:
            found = self.matching(type_, key=key, topic=topic, **payload)
            return found if len(found) >= count else []
        return await until(enough, f"{count} x {type_ or 'record'} (key={key}, {payload})",
                           timeout_s)


async def read_topic(bootstrap: str, topic: str, expect: int, timeout_s: float = 20.0
                     ) -> list[Record]:
    """The topic's records from its start, once ``expect`` of them are there (or all
    there are after ``timeout_s``: the caller asserts the count)."""
    reader = TopicReader(bootstrap, [topic], start_at="beginning")
    async with reader:
        with contextlib.suppress(AssertionError):
            await reader.wait_for(count=expect, timeout_s=timeout_s)
        return list(reader.seen)


async def consumed_all(consumer: InboxConsumer, bootstrap: str, topics: Sequence[str],
                       timeout_s: float = 30.0) -> None:
    """Wait until ``consumer``'s group has committed every record ``topics`` hold now.

    The group's offsets as the broker holds them, whoever committed them: a replica that
    left the group may have committed a partition's last record, which the survivor then
    never reads (its own record of what it committed would never get there)."""
    ends = {tp: off for tp, off in (await end_offsets(bootstrap, topics)).items() if off}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    committed: dict[TopicPartition, int] = {}

    async def caught_up() -> bool:
        offsets = await admin.list_consumer_group_offsets(consumer.group)
        committed.update({tp: meta.offset for tp, meta in offsets.items()})
        return all(committed.get(tp, 0) >= off for tp, off in ends.items())
    try:
        await until(caught_up, f"{consumer.group} committed through {ends}", timeout_s,
                    interval_s=0.2)
    finally:
        await admin.close()
