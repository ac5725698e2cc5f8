"""Kafka plumbing: producer and consumer factories with the safe settings, topics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger("noria.kafka")

# Every topic of the platform; each consumer group's dead letters go to <topic>.dlq.
TOPICS = (
    "clients.events", "clients.commands", "loans.events", "payments.events",
    "payments.postings", "payments.commands", "notifications.events",
    "notifications.deliveries", "savings.events", "savings.commands",
)


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def make_producer(bootstrap: str, *, client_id: str, linger_ms: int = 5) -> AIOKafkaProducer:
    # Idempotence forces acks=all and keeps per-partition order across retries.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id=client_id, enable_idempotence=True,
        acks="all", linger_ms=linger_ms, request_timeout_ms=15000,
    )


def make_consumer(
    bootstrap: str, *, group_id: str, client_id: str, max_poll_records: int = 500
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, client_id=client_id,
        enable_auto_commit=False, auto_offset_reset="earliest",
        max_poll_records=max_poll_records, isolation_level="read_committed",
        session_timeout_ms=15000, heartbeat_interval_ms=3000,
    )


async def ensure_topics(
    bootstrap: str, topics: Iterable[str], *, partitions: int = 4, replication: int = 1,
    with_dlq: bool = True,
) -> None:
    """Create missing topics (and their dead-letter topics) with ``partitions``."""
    wanted: list[str] = []
    for topic in topics:
        wanted.append(topic)
        if with_dlq and not topic.endswith(".dlq"):
            wanted.append(dlq_topic(topic))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(wanted) if t not in existing]
        if not missing:
            return
        try:
            await admin.create_topics(
                [NewTopic(name=t, num_partitions=partitions, replication_factor=replication)
                 for t in missing]
            )
        except TopicAlreadyExistsError:
            pass
        # Wait until the new topics are visible in the metadata.
        for _ in range(50):
            if set(missing) <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
        log.info("created topics %s", missing)
    finally:
        await admin.close()


async def kafka_reachable(bootstrap: str, timeout_s: float = 2.0) -> tuple[bool, str]:
    """Readiness: can a TCP connection be opened to a bootstrap broker?"""
    errors = []
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout_s)
            writer.close()
            await writer.wait_closed()
            return True, f"{address} reachable"
        except (OSError, TimeoutError) as exc:
            errors.append(f"{address}: {exc or type(exc).__name__}")
    return False, "; ".join(errors)
