"""The client aggregate: identity, KYC decision, block state, contact preferences."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal

from shared.errors import Conflict, Forbidden, InvalidInput

KycStatus = Literal["pending", "verified", "rejected"]


@dataclass(frozen=True)
class Client:
    id: str
    partner_id: str
    full_name: str
    national_id: str
    phone: str
    date_of_birth: dt.date
    language: str
    sms_consent: bool
    region: str | None
    address: str | None
    onboarded_by: str
    office_id: str = "ho"
    office_path: str = "ho"
    officer_id: str | None = None
    kyc_status: KycStatus = "pending"
    kyc_reason: str | None = None
    kyc_decided_by: str | None = None
    kyc_decided_at: dt.datetime | None = None
    blocked: bool = False
    block_reason: str | None = None
    blocked_by: str | None = None
    blocked_by_operator: bool = False
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    version: int = 1


def decide_kyc(client: Client, *, decision: str, reason: str | None, decided_by: str,
               now: dt.datetime) -> Client:
    """Apply an operator's KYC decision (maker-checker: the onboarder cannot decide)."""
    if decision not in ("verified", "rejected"):
        raise InvalidInput("decision must be 'verified' or 'rejected'", field="decision")
    clean_reason = (reason or "").strip() or None
    if decision == "rejected" and clean_reason is None:
        raise InvalidInput("a rejection needs a reason", field="reason")
    if decided_by == client.onboarded_by:
        raise Forbidden("maker-checker: the user who onboarded this client cannot also "
                        "decide its KYC; another operator must", field="decision")
    if client.kyc_status != "pending":
        raise Conflict(f"the KYC of this client was already decided ({client.kyc_status})",
                       field="decision", kyc_status=client.kyc_status)
    status: KycStatus = "verified" if decision == "verified" else "rejected"
    return replace(client, kyc_status=status, kyc_reason=clean_reason,
                   kyc_decided_by=decided_by, kyc_decided_at=now)


def block(client: Client, *, reason: str, by: str, by_operator: bool) -> Client:
    clean = (reason or "").strip()
    if not clean:
        raise InvalidInput("blocking needs a reason", field="reason")
    if client.blocked:
        raise Conflict("the client is already blocked", field="blocked")
    return replace(client, blocked=True, block_reason=clean, blocked_by=by,
                   blocked_by_operator=by_operator)


def unblock(client: Client, *, reason: str, by_operator: bool) -> Client:
    clean = (reason or "").strip()
    if not clean:
        raise InvalidInput("unblocking needs a reason", field="reason")
    if not client.blocked:
        raise Conflict("the client is not blocked", field="blocked")
    if client.blocked_by_operator and not by_operator:
        raise Forbidden("an operator blocked this client; only an operator can unblock it",
                        field="blocked")
    return replace(client, blocked=False, block_reason=None, blocked_by=None,
                   blocked_by_operator=False)
