"""Contracts of the notifications service, keyed by message id: an SMS's delivery on
``notifications.deliveries`` (no service consumes them; the console, audit and the
benchmark read them), opt-outs on ``notifications.events`` (the clients service records
them). Apart, so clients' consumer is not woken twice per SMS for records it drops."""

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
