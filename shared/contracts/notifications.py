"""Contracts of the notifications service (``notifications.events``, keyed by message id)."""

from __future__ import annotations

from typing import ClassVar, Literal

from shared.envelope import Contract, register

EVENTS = "notifications.events"


class SmsEvent(Contract):
    topic: ClassVar[str] = EVENTS
    message_id: str
    client_id: str | None
    template: str


@register
class SmsSubmitted(SmsEvent):
    provider: str
    encoding: Literal["GSM-7", "UCS-2"]
    segments: int


@register
class SmsDelivered(SmsEvent):
    provider: str


@register
class SmsFailed(SmsEvent):
    provider: str | None
    reason: str
    permanent: bool
