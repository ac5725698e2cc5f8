"""The facts the clients tests wait on before asserting that something did not happen."""

from __future__ import annotations

from tests.integration.clients.conftest import Service
from tests.kafka_facts import consumed_all


async def consumed(svc: Service) -> None:
    """Every consumer of the service has committed every record its topics hold now:
    each record sent before took effect, or was a no-op."""
    for consumer in svc.runtime.consumers.values():
        await consumed_all(consumer, svc.runtime.settings.kafka_bootstrap, consumer.topics)


async def emitted(svc: Service, key: str, type_: str) -> int:
    """How many ``type_`` events of aggregate ``key`` the service wrote to its outbox (the
    only way an event leaves it)."""
    [row] = await svc.rows("SELECT count(*) AS n FROM outbox WHERE message_key = $1"
                           " AND envelope->>'type' = $2", key, type_)
    return int(row["n"])
