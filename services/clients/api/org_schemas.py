"""Request and response bodies of the organisation: offices, staff, transfers and
reassignments."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.clients.domain.office import Office, StaffMember
from services.clients.domain.transfer import OrgRequest


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OfficeIn(Body):
    id: str | None = Field(default=None, max_length=40,
                           description="a stable slug (``b-agadir``); generated when absent")
    kind: Literal["region", "branch", "mobile_unit"] = Field(
        description="a region hangs under the head office, a branch under a region, a "
                    "mobile unit under a branch")
    name: str = Field(max_length=120)
    parent_id: str = Field(max_length=40)


class OfficePatch(Body):
    name: str | None = Field(default=None, max_length=120)
    status: Literal["open", "closed"] | None = Field(
        default=None, description="closed only once nothing lives under the office")


class OfficeOut(BaseModel):
    id: str
    kind: Literal["head_office", "region", "branch", "mobile_unit"]
    name: str
    parent_id: str | None
    path: str = Field(description="the ids from the head office down, ``ho/r-souss/b-agadir``")
    status: Literal["open", "closed"]
    opened_by: str
    created_at: dt.datetime | None
    updated_at: dt.datetime | None

    @classmethod
    def of(cls, o: Office) -> OfficeOut:
        return cls(id=o.id, kind=o.kind, name=o.name, parent_id=o.parent_id, path=o.path,
                   status=o.status, opened_by=o.opened_by, created_at=o.created_at,
                   updated_at=o.updated_at)


class OfficePage(BaseModel):
    items: list[OfficeOut]
    next_cursor: str | None = Field(description="pass as ``cursor`` for the next page")


class StaffIn(Body):
    id: str | None = Field(default=None, max_length=40,
                           description="a stable slug; generated when absent")
    full_name: str = Field(max_length=200)
    role: Literal["loan_officer", "branch_manager"]
    office_id: str = Field(max_length=40, description="a loan officer works in a branch or "
                                                      "mobile unit, a branch manager in a branch")


class StaffPatch(Body):
    full_name: str | None = Field(default=None, max_length=200)
    office_id: str | None = Field(default=None, max_length=40)
    active: bool | None = None


class StaffOut(BaseModel):
    id: str
    full_name: str
    role: Literal["loan_officer", "branch_manager"]
    office_id: str
    office_path: str
    active: bool
    created_by: str
    created_at: dt.datetime | None
    updated_at: dt.datetime | None

    @classmethod
    def of(cls, s: StaffMember) -> StaffOut:
        return cls(id=s.id, full_name=s.full_name, role=s.role, office_id=s.office_id,
                   office_path=s.office_path, active=s.active, created_by=s.created_by,
                   created_at=s.created_at, updated_at=s.updated_at)


class StaffPage(BaseModel):
    items: list[StaffOut]
    next_cursor: str | None = Field(description="pass as ``cursor`` for the next page")


class TransferIn(Body):
    client_id: str = Field(max_length=64)
    to_office_id: str | None = Field(
        default=None, max_length=40,
        description="the client's new office; absent: its current one (an assignment)")
    to_officer_id: str | None = Field(default=None, max_length=40,
                                      description="the loan officer; absent: none yet")
    reason: str = Field(max_length=500)


class ReassignmentIn(Body):
    from_officer_id: str = Field(max_length=40)
    to_officer_id: str = Field(max_length=40)
    reason: str = Field(max_length=500)


class RejectIn(Body):
    reason: str = Field(max_length=500)


class RequestOut(BaseModel):
    id: str
    kind: Literal["transfer", "reassignment"]
    status: Literal["pending", "approved", "rejected"]
    client_id: str | None
    from_office_id: str
    from_office_path: str
    to_office_id: str
    to_office_path: str
    from_officer_id: str | None
    to_officer_id: str | None
    reason: str
    requested_by: str
    requested_at: dt.datetime | None
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    moved_clients: int = Field(description="clients moved by the approval")
    moved_groups: int = Field(description="groups moved by the approval")

    @classmethod
    def of(cls, r: OrgRequest) -> RequestOut:
        return cls(id=r.id, kind=r.kind, status=r.status, client_id=r.client_id,
                   from_office_id=r.from_office_id, from_office_path=r.from_office_path,
                   to_office_id=r.to_office_id, to_office_path=r.to_office_path,
                   from_officer_id=r.from_officer_id, to_officer_id=r.to_officer_id,
                   reason=r.reason, requested_by=r.requested_by, requested_at=r.requested_at,
                   decided_by=r.decided_by, decided_at=r.decided_at,
                   decision_reason=r.decision_reason, moved_clients=r.moved_clients,
                   moved_groups=r.moved_groups)


class RequestPage(BaseModel):
    items: list[RequestOut]
    next_cursor: str | None = Field(description="pass as ``cursor`` for the next page")
