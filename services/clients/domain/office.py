"""The organisation: offices in a hierarchy and the staff attached to them.

Head office → region → branch → mobile unit. Every office has a stable id (a slug,
``b-agadir``) and a materialised path of its ancestors' ids (``ho/r-souss/b-agadir``);
an office never moves, so a path never changes and rows elsewhere may keep a copy.
A token scoped to an office sees that office and everything below it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import Literal

from shared.errors import Conflict, InvalidInput

OfficeKind = Literal["head_office", "region", "branch", "mobile_unit"]
OfficeStatus = Literal["open", "closed"]
StaffRole = Literal["loan_officer", "branch_manager"]

KINDS: tuple[OfficeKind, ...] = ("head_office", "region", "branch", "mobile_unit")
ROLES: tuple[StaffRole, ...] = ("loan_officer", "branch_manager")
HEAD_OFFICE_ID = "ho"
# The kind each kind of office hangs under.
PARENT_KIND: dict[OfficeKind, OfficeKind | None] = {
    "head_office": None,
    "region": "head_office",
    "branch": "region",
    "mobile_unit": "branch",
}
# Where each role may be attached.
ROLE_OFFICES: dict[StaffRole, tuple[OfficeKind, ...]] = {
    "loan_officer": ("branch", "mobile_unit"),
    "branch_manager": ("branch",),
}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class Office:
    id: str
    kind: OfficeKind
    name: str
    parent_id: str | None
    path: str
    status: OfficeStatus = "open"
    opened_by: str = ""
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    version: int = 1


@dataclass(frozen=True)
class StaffMember:
    id: str
    full_name: str
    role: StaffRole
    office_id: str
    office_path: str
    active: bool = True
    created_by: str = ""
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    version: int = 1


def within(path: str, ancestor: str) -> bool:
    """True when ``path`` is ``ancestor`` or below it."""
    return path == ancestor or path.startswith(ancestor + "/")


def check_slug(value: str, *, field: str) -> str:
    slug = (value or "").strip().lower()
    if not _SLUG.match(slug):
        raise InvalidInput("an id is 1 to 40 lower-case letters, digits or dashes, "
                           "starting with a letter or digit", field=field)
    return slug


def clean_name(value: str, *, field: str = "name", max_len: int = 120) -> str:
    name = " ".join((value or "").split())
    if len(name) < 2:
        raise InvalidInput("a name of at least 2 characters is required", field=field)
    if len(name) > max_len:
        raise InvalidInput(f"a name is at most {max_len} characters", field=field)
    return name


def check_kind(value: str, *, field: str = "kind") -> OfficeKind:
    for kind in KINDS:
        if value == kind:
            return kind
    raise InvalidInput(f"kind is one of {', '.join(KINDS)}", field=field)


def check_role(value: str, *, field: str = "role") -> StaffRole:
    for role in ROLES:
        if value == role:
            return role
    raise InvalidInput(f"role is one of {', '.join(ROLES)}", field=field)


def new_office(*, office_id: str, kind: str, name: str, parent: Office | None,
               opened_by: str) -> Office:
    """An office to open under ``parent``: the kind must fit the parent's kind."""
    oid = check_slug(office_id, field="id")
    k = check_kind(kind)
    clean = clean_name(name)
    wanted = PARENT_KIND[k]
    if wanted is None:
        raise InvalidInput("there is one head office and it already exists", field="kind")
    if parent is None:
        raise InvalidInput("no such parent office", field="parent_id")
    if parent.kind != wanted:
        raise InvalidInput(f"a {k.replace('_', ' ')}'s parent is a {wanted.replace('_', ' ')},"
                           f" not a {parent.kind.replace('_', ' ')}", field="parent_id")
    if parent.status != "open":
        raise Conflict("the parent office is closed", field="parent_id")
    return Office(id=oid, kind=k, name=clean, parent_id=parent.id,
                  path=f"{parent.path}/{oid}", opened_by=opened_by)


def close_office(office: Office, *, open_children: int, members: int, clients: int) -> Office:
    """An office closes only once nothing lives under it any more."""
    if office.kind == "head_office":
        raise InvalidInput("the head office cannot be closed", field="status")
    if office.status == "closed":
        return office
    if open_children or members or clients:
        raise Conflict(f"the office still has {open_children} open office(s), {members} "
                       f"active staff and {clients} client(s) or group(s); move them first",
                       field="status")
    return replace(office, status="closed")


def check_attachment(role: StaffRole, office: Office | None, *, field: str = "office_id"
                     ) -> Office:
    """Where a staff member may work: loan officers in a branch or mobile unit, branch
    managers in a branch; never in a closed office."""
    if office is None:
        raise InvalidInput("no such office", field=field)
    allowed = ROLE_OFFICES[role]
    if office.kind not in allowed:
        where = " or ".join(k.replace("_", " ") for k in allowed)
        raise InvalidInput(f"a {role.replace('_', ' ')} works in a {where}, not a "
                           f"{office.kind.replace('_', ' ')}", field=field)
    if office.status != "open":
        raise InvalidInput("the office is closed", field=field)
    return office


def check_officer_for(office: Office, officer: StaffMember | None, *,
                      field: str = "officer_id") -> StaffMember:
    """A client or group of ``office`` is looked after by an active loan officer of that
    office or of an office below it."""
    if officer is None:
        raise InvalidInput("no such loan officer", field=field)
    if officer.role != "loan_officer":
        raise InvalidInput(f"{officer.id} is a {officer.role.replace('_', ' ')}, not a loan "
                           "officer", field=field)
    if not officer.active:
        raise InvalidInput(f"loan officer {officer.id} is no longer active", field=field)
    if not within(officer.office_path, office.path):
        raise InvalidInput(f"loan officer {officer.id} works in {officer.office_path}, "
                           f"outside {office.path}", field=field)
    return officer
