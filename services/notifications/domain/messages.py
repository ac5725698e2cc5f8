"""Outgoing messages: statuses, who may receive one, quiet hours, retries.

Status: ``queued`` → ``submitted`` → ``delivered`` | ``failed`` | ``expired``;
``suppressed`` when the message must not be sent at all (no consent, client
blocked, unknown client or phone, an event too old by the time its client became
known: see ``held``). A ``failed`` message says whether the failure
was permanent (the number or the content was refused: never retried) or
temporary (retries ran out).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

Status = Literal["queued", "submitted", "delivered", "failed", "expired", "suppressed"]
STATUSES: tuple[Status, ...] = ("queued", "submitted", "delivered", "failed", "expired",
                                "suppressed")
FailureKind = Literal["throttled", "temporary", "permanent"]
CASABLANCA = ZoneInfo("Africa/Casablanca")


@dataclass(frozen=True)
class Recipient:
    """What the projection of ``clients.events`` knows about a client."""

    client_id: str
    partner_id: str | None
    phone: str | None
    language: str
    consent: bool
    blocked: bool
    office_path: str | None = None  # the client's current office (None: not known)


def suppression_reason(recipient: Recipient | None) -> str | None:
    """Why a message to ``recipient`` must not be sent, or None when it may."""
    if recipient is None:
        return "unknown_client"
    if recipient.blocked:
        return "client_blocked"
    if not recipient.consent:
        return "no_consent"
    if not recipient.phone:
        return "no_phone"
    return None


@dataclass(frozen=True)
class QuietHours:
    """Local hours (Africa/Casablanca) when non-urgent messages wait for the morning.

    ``start=21, end=8`` means from 21:00 to 08:00; ``start == end`` disables it.
    """

    start: int = 21
    end: int = 8
    zone: ZoneInfo = CASABLANCA

    def __post_init__(self) -> None:
        if not (0 <= self.start <= 23 and 0 <= self.end <= 23):
            raise ValueError("quiet hours are whole hours between 0 and 23")

    def _quiet(self, hour: int) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end

    def release_time(self, now: dt.datetime) -> dt.datetime | None:
        """When a non-urgent message created at ``now`` may go; None if right away."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        local = now.astimezone(self.zone)
        if not self._quiet(local.hour):
            return None
        day = local.date()
        if local.hour >= self.end:  # evening: the end is tomorrow morning
            day = day + dt.timedelta(days=1)
        release = dt.datetime.combine(day, dt.time(self.end), tzinfo=self.zone)
        return release.astimezone(dt.UTC)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 2.0
    cap_s: float = 300.0
    throttle_s: float = 5.0

    def delay(self, attempt: int, kind: FailureKind) -> float:
        """Seconds before attempt ``attempt + 1`` after ``attempt`` failed for ``kind``."""
        exp = min(self.cap_s, self.base_s * float(2 ** max(attempt - 1, 0)))
        return max(exp, self.throttle_s) if kind == "throttled" else exp

    def gives_up(self, attempt: int, kind: FailureKind) -> bool:
        return kind == "permanent" or attempt >= self.max_attempts


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt (``id:… stat:DELIVRD …``) parsed from a provider."""

    provider_message_id: str
    stat: str
    error: str = ""

    @property
    def status(self) -> Status:
        if self.stat == "DELIVRD":
            return "delivered"
        if self.stat == "EXPIRED":
            return "expired"
        if self.stat in ("ENROUTE", "ACCEPTD", "UNKNOWN"):
            return "submitted"
        return "failed"  # UNDELIV, REJECTD, DELETED


def parse_receipt(text: str) -> Receipt | None:
    """Parse the SMPP 3.4 Appendix B receipt text; None if it is not one."""
    fields: dict[str, str] = {}
    rest = text
    # "submit date:" and "done date:" have a space in their names; "text:" runs to the end.
    for key in ("id", "sub", "dlvrd", "submit date", "done date", "stat", "err"):
        marker = f"{key}:"
        pos = rest.lower().find(marker)
        if pos < 0:
            continue
        after = rest[pos + len(marker):]
        value = after.split(" ", 1)[0]
        fields[key] = value
    if "id" not in fields or "stat" not in fields:
        return None
    return Receipt(fields["id"], fields["stat"].upper(), fields.get("err", ""))


def combine_parts(statuses: list[Status]) -> Status | None:
    """The message's status from its parts' receipts; None while some are pending."""
    if any(s == "failed" for s in statuses):
        return "failed"
    if any(s == "expired" for s in statuses):
        return "expired"
    if statuses and all(s == "delivered" for s in statuses):
        return "delivered"
    return None


def is_stop(text: str) -> bool:
    """A reply that asks for no more SMS (French, English or Arabic keywords)."""
    word = text.strip().strip(".!").upper()
    return word in {"STOP", "ARRET", "ARRÊT", "STOP SMS", "UNSUBSCRIBE", "توقف", "ايقاف",
                    "إيقاف"}
