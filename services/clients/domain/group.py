"""Solidarity groups: joint liability between 3 and 10 verified clients."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.clients.domain.office import Office, within
from shared.errors import Conflict, InvalidInput

MIN_MEMBERS = 3
MAX_MEMBERS = 10


@dataclass(frozen=True)
class MemberState:
    client_id: str
    partner_id: str
    kyc_status: str
    blocked: bool
    active_group_id: str | None
    office_path: str = "ho"
    office_id: str = "ho"


def check_group(*, name: str, leader_id: str, member_ids: Sequence[str],
                members: Mapping[str, MemberState]) -> tuple[str, list[str]]:
    """Validate a group to form; return (the clean name, the distinct member ids).

    ``members`` holds what the caller may see of each requested id; an id
    missing from it is reported as unknown (another partner's client included).
    """
    clean = " ".join((name or "").split())
    if not clean:
        raise InvalidInput("the group needs a name", field="name")
    ids = list(dict.fromkeys(member_ids))
    if len(ids) != len(member_ids):
        raise InvalidInput("a client is listed twice", field="member_ids")
    if len(ids) < MIN_MEMBERS or len(ids) > MAX_MEMBERS:
        raise InvalidInput(f"a solidarity group has {MIN_MEMBERS} to {MAX_MEMBERS} members; "
                           f"got {len(ids)}", field="member_ids")
    if leader_id not in ids:
        raise InvalidInput("the leader must be one of the members", field="leader_id")
    for i, cid in enumerate(ids):
        member = members.get(cid)
        if member is None:
            raise InvalidInput(f"no such client: {cid}", field=f"member_ids.{i}")
        if member.kyc_status != "verified":
            raise InvalidInput(f"client {cid} is not KYC-verified ({member.kyc_status})",
                               field=f"member_ids.{i}")
        if member.blocked:
            raise InvalidInput(f"client {cid} is blocked", field=f"member_ids.{i}")
    partners = {members[cid].partner_id for cid in ids}
    if len(partners) > 1:
        raise InvalidInput("all members must belong to the same partner", field="member_ids")
    for i, cid in enumerate(ids):
        existing = members[cid].active_group_id
        if existing is not None:
            raise Conflict(f"client {cid} is already in an active group",
                           field=f"member_ids.{i}", existing_group_id=existing)
    return clean, ids


def check_members_in(office: Office, member_paths: Sequence[str]) -> None:
    """Every member of a group belongs to the group's office or to an office below it."""
    for i, path in enumerate(member_paths):
        if not within(path, office.path):
            raise InvalidInput(f"member {i} belongs to {path}, outside the group's office "
                               f"{office.path}", field=f"member_ids.{i}")
