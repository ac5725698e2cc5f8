"""Contracts of the notifications service: an SMS's delivery on
``notifications.deliveries``, keyed by message id (no service consumes them; the
benchmark's tracker reads them), opt-outs on ``notifications.events``, keyed by client
id (the clients service records them). Apart, so that the clients service's consumer
is not woken twice per SMS for records it would drop."""

from __future__ import annotations

from typing import ClassVar, Literal

from shared.envelope import Contract, register

EVENTS = "notifications.events"
DELIVERIES = "notifications.deliveries"


class SmsEvent(Contract):
    topic: ClassVar[str] = DELIVERIES
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


@register
class SmsOptedOut(Contract):
    """A phone asked for no more SMS (a STOP reply, or through the API), keyed by client id.

    The notifications service has already stopped sending to ``client_id``; the
    clients service may record it as ``ClientConsentChanged(source="sms_stop")``.
    ``client_id`` is None when no known client has that phone.
    """

    topic: ClassVar[str] = EVENTS
    phone: str
    client_id: str | None
    source: Literal["sms_stop", "api"]
