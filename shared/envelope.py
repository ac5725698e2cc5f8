"""The event envelope and the contract base every message on Kafka uses.

A *contract* is a frozen pydantic model with ``extra="forbid"``: the payload of one
event or command type. The *envelope* wraps a payload with the identity and
tracing data every consumer needs (``event_id`` for the inbox, ``aggregate_id``
for the partition key, ``traceparent`` for the trace).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Contract(BaseModel):
    """Base of every event and command payload.

    Subclasses set ``topic`` (where it is published) and may set ``version``.
    The type name on the wire is the class name: events are past tense
    (``CreditReserved``), commands imperative (``ReserveCredit``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: ClassVar[str]
    version: ClassVar[int] = 1
    kind: ClassVar[str] = "event"

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    aggregate_id: str
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    payload: dict[str, Any]

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        """Parse and validate in one pass (pydantic's own JSON parser, no dict first)."""
        return cls.model_validate_json(raw)

    def parse(self) -> Contract:
        """Validate the payload against the registered contract for its type."""
        contract = REGISTRY.get(self.type)
        if contract is None:
            raise UnknownMessageType(self.type)
        return contract.model_validate(self.payload)


class UnknownMessageType(Exception):
    def __init__(self, type_name: str) -> None:
        super().__init__(f"no contract is registered for message type {type_name!r}")
        self.type_name = type_name


REGISTRY: dict[str, type[Contract]] = {}

C = TypeVar("C", bound=type[Contract])


def register(cls: C) -> C:
    """Class decorator: make a contract known to consumers by its type name."""
    name = cls.type_name()
    existing = REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"two contracts share the type name {name!r}")
    REGISTRY[name] = cls
    return cls


def envelope_for(
    message: Contract,
    *,
    aggregate_id: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    traceparent: str | None = None,
) -> Envelope:
    return Envelope(
        type=message.type_name(),
        version=message.version,
        aggregate_id=aggregate_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        traceparent=traceparent,
        payload=message.model_dump(mode="json"),
    )


__all__ = [
    "REGISTRY",
    "Contract",
    "Envelope",
    "UnknownMessageType",
    "ValidationError",
    "envelope_for",
    "register",
]
