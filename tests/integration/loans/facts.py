"""Barriers on what the loans instance under test has done, for asserting absences
("no ReleaseCredit was sent", "the duplicate changed nothing") only once the facts
that would contradict them would already be visible.

- :func:`all_published`: every outbox row the service wrote is on Kafka;
- :func:`read_through`: a :class:`~tests.kafka_facts.TopicReader` holds every record the
  topics had when it was called;
- :func:`settled`: both, for the service's output topics;
- :func:`consumed_everything`: the loans consumer group committed every record of its
  input topics (duplicates included).
"""

from __future__ import annotations

from typing import cast

from shared.app import Runtime
from tests.integration.loans.harness import Loans
from tests.kafka_facts import TopicReader, consumed_all, end_offsets, until

OUTPUT_TOPICS = ("loans.events", "clients.commands", "payments.commands", "savings.commands")
INPUT_TOPICS = ("clients.events", "payments.events", "savings.events")


def runtime_of(svc: Loans) -> Runtime:
    """The running app's runtime (the in-process client's ASGI app holds it)."""
    app = svc.client._transport.app  # type: ignore[attr-defined]
    return cast(Runtime, app.state.runtime)


def output_reader(svc: Loans) -> TopicReader:
    """A reader of everything the service has sent (its topics are its own, made for the
    test, so from their beginning), topics named canonically."""
    prefix = svc.settings.topic_prefix
    return TopicReader(svc.settings.kafka_bootstrap, [prefix + t for t in OUTPUT_TOPICS],
                       start_at="beginning", strip_prefix=prefix)


async def all_published(svc: Loans, timeout_s: float = 30.0) -> None:
    async def none_pending() -> bool:
        return await svc.count("outbox", "published_at IS NULL") == 0
    await until(none_pending, "every outbox row published", timeout_s)


async def read_through(reader: TopicReader, timeout_s: float = 30.0) -> None:
    ends = {(tp.topic, tp.partition): off
            for tp, off in (await end_offsets(reader.bootstrap, reader.topics)).items() if off}
    prefix = reader.strip_prefix

    async def caught_up() -> bool:
        last: dict[tuple[str, int], int] = {}
        for r in list(reader.seen):
            key = (prefix + r.topic, r.partition)
            last[key] = max(last.get(key, -1), r.offset)
        return all(last.get(tp, -1) >= off - 1 for tp, off in ends.items())
    await until(caught_up, f"reader holds every record up to {ends}", timeout_s)


async def settled(svc: Loans, reader: TopicReader) -> None:
    """Everything the service has written so far is published and read."""
    await all_published(svc)
    await read_through(reader)


async def consumed_everything(svc: Loans) -> None:
    prefix = svc.settings.topic_prefix
    consumer = runtime_of(svc).consumers[f"{prefix}loans"]
    await consumed_all(consumer, svc.settings.kafka_bootstrap,
                       [prefix + t for t in INPUT_TOPICS])
