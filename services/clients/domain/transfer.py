"""Maker-checker requests of the organisation: transferring (or assigning) a client and
reassigning a loan officer's whole portfolio.

One operator proposes; a different operator approves or rejects. Nothing moves until
the approval, and the approval checks again what the proposal checked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal

from shared.errors import Conflict, Forbidden, InvalidInput

RequestKind = Literal["transfer", "reassignment"]
RequestStatus = Literal["pending", "approved", "rejected"]


@dataclass(frozen=True)
class OrgRequest:
    id: str
    kind: RequestKind
    reason: str
    requested_by: str
    from_office_id: str
    from_office_path: str
    to_office_id: str
    to_office_path: str
    client_id: str | None = None
    from_officer_id: str | None = None
    to_officer_id: str | None = None
    status: RequestStatus = "pending"
    requested_at: dt.datetime | None = None
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    decision_reason: str | None = None
    moved_clients: int = 0
    moved_groups: int = 0


def clean_reason(value: str | None, *, field: str = "reason") -> str:
    clean = " ".join((value or "").split())
    if not clean:
        raise InvalidInput("a reason is required", field=field)
    return clean


def check_transfer(*, from_office_id: str, from_officer_id: str | None, to_office_id: str,
                   to_officer_id: str | None, active_group_id: str | None) -> None:
    """A transfer changes the office, the officer or both; a member of a live solidarity
    group moves with its group, never alone."""
    if from_office_id == to_office_id and from_officer_id == to_officer_id:
        raise InvalidInput("the client is already in this office with this officer",
                           field="to_office_id")
    if active_group_id is not None:
        raise Conflict("the client is a member of an active solidarity group and cannot "
                       "move alone", field="client_id", group_id=active_group_id)


def check_reassignment(*, from_officer_id: str, to_officer_id: str) -> None:
    if from_officer_id == to_officer_id:
        raise InvalidInput("the portfolio is already this officer's", field="to_officer_id")


def decide(request: OrgRequest, *, approve: bool, by: str, reason: str | None,
           now: dt.datetime) -> OrgRequest:
    """Maker-checker: whoever proposed a request cannot decide it."""
    if by == request.requested_by:
        raise Forbidden("maker-checker: the operator who proposed this request cannot also "
                        "decide it; another operator must", field="requested_by")
    if request.status != "pending":
        raise Conflict(f"the request was already {request.status}", field="status",
                       status_now=request.status)
    note = (reason or "").strip() or None
    if not approve and note is None:
        raise InvalidInput("a rejection needs a reason", field="reason")
    return replace(request, status="approved" if approve else "rejected", decided_by=by,
                   decided_at=now, decision_reason=note)
