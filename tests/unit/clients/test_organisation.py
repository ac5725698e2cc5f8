"""The organisation's rules: which office hangs under which, where staff may work, who
may look after a client, and maker-checker on transfers."""

from __future__ import annotations

import datetime as dt

import pytest

from services.clients.domain.group import check_members_in
from services.clients.domain.office import (
    Office,
    StaffMember,
    check_attachment,
    check_officer_for,
    check_slug,
    close_office,
    new_office,
    within,
)
from services.clients.domain.transfer import OrgRequest, check_transfer, decide
from shared.errors import Conflict, Forbidden, InvalidInput

HO = Office(id="ho", kind="head_office", name="Head office", parent_id=None, path="ho")
SOUSS = Office(id="r-souss", kind="region", name="Souss", parent_id="ho", path="ho/r-souss")
AGADIR = Office(id="b-agadir", kind="branch", name="Agadir", parent_id="r-souss",
                path="ho/r-souss/b-agadir")
MOBILE = Office(id="m-1", kind="mobile_unit", name="Souk bus", parent_id="b-agadir",
                path="ho/r-souss/b-agadir/m-1")
TIZNIT = Office(id="b-tiznit", kind="branch", name="Tiznit", parent_id="r-souss",
                path="ho/r-souss/b-tiznit")
NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def officer(office: Office, *, role: str = "loan_officer", active: bool = True,
            sid: str = "lo-1") -> StaffMember:
    return StaffMember(id=sid, full_name="Said", role=role,  # type: ignore[arg-type]
                       office_id=office.id, office_path=office.path, active=active)


def field_of(exc: pytest.ExceptionInfo[Exception]) -> str | None:
    assert isinstance(exc.value, InvalidInput | Conflict | Forbidden)
    return exc.value.field


@pytest.mark.parametrize(("kind", "parent"), [
    ("region", HO), ("branch", SOUSS), ("mobile_unit", AGADIR)])
def test_each_kind_opens_under_its_parent_kind_with_the_parents_path(kind: str, parent: Office
                                                                     ) -> None:
    office = new_office(office_id="X-New", kind=kind, name="  New   office ", parent=parent,
                        opened_by="op")
    assert office.id == "x-new"
    assert office.path == f"{parent.path}/x-new"
    assert office.parent_id == parent.id and office.name == "New office"


@pytest.mark.parametrize(("kind", "parent"), [
    ("branch", HO), ("mobile_unit", SOUSS), ("region", AGADIR), ("branch", AGADIR),
    ("mobile_unit", MOBILE), ("region", SOUSS)])
def test_a_kind_under_the_wrong_parent_kind_is_refused_naming_the_parent(kind: str,
                                                                        parent: Office) -> None:
    with pytest.raises(InvalidInput) as exc:
        new_office(office_id="x", kind=kind, name="New", parent=parent, opened_by="op")
    assert field_of(exc) == "parent_id"


def test_there_is_one_head_office_and_unknown_kinds_or_parents_are_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        new_office(office_id="ho2", kind="head_office", name="Other", parent=None,
                   opened_by="op")
    assert field_of(exc) == "kind"
    with pytest.raises(InvalidInput) as exc:
        new_office(office_id="x", kind="district", name="X1", parent=HO, opened_by="op")
    assert field_of(exc) == "kind"
    with pytest.raises(InvalidInput) as exc:
        new_office(office_id="x", kind="branch", name="X1", parent=None, opened_by="op")
    assert field_of(exc) == "parent_id"


@pytest.mark.parametrize("bad", ["", "-x", "a/b", "b agadir", "é", "x" * 41, "a_b"])
def test_office_ids_are_slugs_that_cannot_break_a_path(bad: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_slug(bad, field="id")
    assert field_of(exc) == "id"


def test_a_closed_parent_takes_no_new_office() -> None:
    closed = Office(**{**SOUSS.__dict__, "status": "closed"})
    with pytest.raises(Conflict):
        new_office(office_id="b-x", kind="branch", name="X1", parent=closed, opened_by="op")


def test_subtree_is_by_path_segment_not_by_text_prefix() -> None:
    assert within("ho/r-souss/b-agadir/m-1", "ho/r-souss")
    assert within("ho/r-souss", "ho/r-souss")
    assert not within("ho/r-souss-2/b-x", "ho/r-souss")
    assert not within("ho/r-souss", "ho/r-souss/b-agadir")


def test_staff_work_where_their_role_belongs() -> None:
    assert check_attachment("loan_officer", AGADIR) is AGADIR
    assert check_attachment("loan_officer", MOBILE) is MOBILE
    assert check_attachment("branch_manager", AGADIR) is AGADIR
    for role, office in (("loan_officer", SOUSS), ("loan_officer", HO),
                         ("branch_manager", MOBILE), ("branch_manager", SOUSS)):
        with pytest.raises(InvalidInput) as exc:
            check_attachment(role, office)  # type: ignore[arg-type]
        assert field_of(exc) == "office_id"
    with pytest.raises(InvalidInput):
        check_attachment("loan_officer", None)


def test_a_clients_officer_works_in_its_office_or_below() -> None:
    assert check_officer_for(AGADIR, officer(AGADIR)).id == "lo-1"
    assert check_officer_for(AGADIR, officer(MOBILE)).id == "lo-1"
    assert check_officer_for(SOUSS, officer(AGADIR)).id == "lo-1"
    refused = [officer(TIZNIT), officer(AGADIR, active=False),
               officer(AGADIR, role="branch_manager"), None]
    for candidate in refused:
        with pytest.raises(InvalidInput) as exc:
            check_officer_for(AGADIR, candidate)
        assert field_of(exc) == "officer_id"
    with pytest.raises(InvalidInput):  # a mobile unit's client is not a branch officer's
        check_officer_for(MOBILE, officer(AGADIR))


def test_group_members_belong_to_the_groups_office_subtree() -> None:
    check_members_in(AGADIR, [AGADIR.path, MOBILE.path])
    with pytest.raises(InvalidInput) as exc:
        check_members_in(AGADIR, [AGADIR.path, TIZNIT.path])
    assert field_of(exc) == "member_ids.1"


def test_an_office_closes_only_when_empty_and_never_the_head_office() -> None:
    assert close_office(AGADIR, open_children=0, members=0, clients=0).status == "closed"
    for counts in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
        with pytest.raises(Conflict):
            close_office(AGADIR, open_children=counts[0], members=counts[1],
                         clients=counts[2])
    with pytest.raises(InvalidInput):
        close_office(HO, open_children=0, members=0, clients=0)


def test_a_transfer_must_change_something_and_group_members_do_not_move_alone() -> None:
    check_transfer(from_office_id="b-agadir", from_officer_id=None, to_office_id="b-agadir",
                   to_officer_id="lo-1", active_group_id=None)
    with pytest.raises(InvalidInput) as exc:
        check_transfer(from_office_id="b-agadir", from_officer_id="lo-1",
                       to_office_id="b-agadir", to_officer_id="lo-1", active_group_id=None)
    assert field_of(exc) == "to_office_id"
    with pytest.raises(Conflict):
        check_transfer(from_office_id="b-agadir", from_officer_id=None,
                       to_office_id="b-tiznit", to_officer_id=None, active_group_id="g-1")


def request() -> OrgRequest:
    return OrgRequest(id="r1", kind="transfer", reason="moved house", requested_by="maker",
                      from_office_id="b-agadir", from_office_path=AGADIR.path,
                      to_office_id="b-tiznit", to_office_path=TIZNIT.path, client_id="c1")


def test_the_maker_cannot_check_and_a_request_is_decided_once() -> None:
    with pytest.raises(Forbidden):
        decide(request(), approve=True, by="maker", reason=None, now=NOW)
    approved = decide(request(), approve=True, by="checker", reason=None, now=NOW)
    assert (approved.status, approved.decided_by, approved.decided_at) == (
        "approved", "checker", NOW)
    with pytest.raises(Conflict):
        decide(approved, approve=False, by="third", reason="late", now=NOW)
    with pytest.raises(InvalidInput) as exc:
        decide(request(), approve=False, by="checker", reason="  ", now=NOW)
    assert field_of(exc) == "reason"
    assert decide(request(), approve=False, by="checker", reason="no", now=NOW).status == (
        "rejected")
