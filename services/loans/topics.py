"""Where loans publishes and what it reads.

Normally the platform topics themselves (``loans.events``, ``clients.commands``, …).
``NORIA_LOANS_TOPIC_PREFIX`` prefixes every one of them: a test instance on a shared
broker then talks only to its own topics and never answers, or commands, the other
services running there. Set once by the composition root.
"""

from __future__ import annotations

from shared.envelope import Contract, Envelope
from shared.uow import UnitOfWork

_prefix = ""


def configure(prefix: str) -> None:
    global _prefix
    _prefix = prefix


def topic(name: str) -> str:
    return f"{_prefix}{name}"


def emit(uow: UnitOfWork, message: Contract, *, key: str) -> Envelope:
    """Queue ``message`` for the outbox on its (possibly prefixed) topic."""
    return uow.emit(message, key=key, topic=topic(message.topic))
