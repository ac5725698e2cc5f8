"""KYC maker-checker, block/unblock, and solidarity group rules (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from services.clients.domain import client as model
from services.clients.domain.client import Client
from services.clients.domain.group import MemberState, check_group
from shared.errors import Conflict, Forbidden, InvalidInput

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def a_client(**kw: object) -> Client:
    base = dict(id="c1", partner_id="p1", full_name="Amina B", national_id="BE1",
                phone="+212612345678", date_of_birth=dt.date(1990, 1, 1), language="fr",
                sms_consent=True, region=None, address=None, onboarded_by="agent-1")
    base.update(kw)
    return Client(**base)  # type: ignore[arg-type]


def test_the_onboarder_cannot_decide_kyc() -> None:
    with pytest.raises(Forbidden):
        model.decide_kyc(a_client(), decision="verified", reason=None, decided_by="agent-1",
                         now=NOW)


def test_another_operator_verifies_once() -> None:
    verified = model.decide_kyc(a_client(), decision="verified", reason=None,
                                decided_by="ops-2", now=NOW)
    assert (verified.kyc_status, verified.kyc_decided_by) == ("verified", "ops-2")
    with pytest.raises(Conflict):
        model.decide_kyc(verified, decision="rejected", reason="fraud", decided_by="ops-3",
                         now=NOW)


def test_rejection_needs_a_reason_and_decisions_are_two() -> None:
    with pytest.raises(InvalidInput) as err:
        model.decide_kyc(a_client(), decision="rejected", reason=" ", decided_by="ops-2",
                         now=NOW)
    assert err.value.field == "reason"
    with pytest.raises(InvalidInput) as err:
        model.decide_kyc(a_client(), decision="maybe", reason=None, decided_by="ops-2",
                         now=NOW)
    assert err.value.field == "decision"


def test_block_and_unblock_need_reasons_and_an_operator_block_binds_partners() -> None:
    with pytest.raises(InvalidInput):
        model.block(a_client(), reason="", by="ops", by_operator=True)
    blocked = model.block(a_client(), reason="fraud check", by="ops", by_operator=True)
    with pytest.raises(Conflict):
        model.block(blocked, reason="again", by="ops", by_operator=True)
    with pytest.raises(Forbidden):
        model.unblock(blocked, reason="cleared", by_operator=False)
    assert model.unblock(blocked, reason="cleared", by_operator=True).blocked is False
    own = model.block(a_client(), reason="lost phone", by="agent", by_operator=False)
    assert model.unblock(own, reason="found", by_operator=False).blocked is False


def members(n: int, **override: MemberState) -> dict[str, MemberState]:
    out = {f"c{i}": MemberState(f"c{i}", "p1", "verified", False, None) for i in range(n)}
    out.update(override)
    return out


def test_a_valid_group() -> None:
    name, ids = check_group(name=" Tighmert  women ", leader_id="c0",
                            member_ids=["c0", "c1", "c2"], members=members(3))
    assert (name, ids) == ("Tighmert women", ["c0", "c1", "c2"])


@pytest.mark.parametrize(("ids", "leader", "override", "field"), [
    (["c0", "c1"], "c0", {}, "member_ids"),
    ([f"c{i}" for i in range(11)], "c0", {}, "member_ids"),
    (["c0", "c1", "c1"], "c0", {}, "member_ids"),
    (["c0", "c1", "c2"], "c9", {}, "leader_id"),
    (["c0", "c1", "zz"], "c0", {}, "member_ids.2"),
    (["c0", "c1", "c2"], "c0", {"c1": MemberState("c1", "p1", "pending", False, None)},
     "member_ids.1"),
    (["c0", "c1", "c2"], "c0", {"c2": MemberState("c2", "p1", "verified", True, None)},
     "member_ids.2"),
    (["c0", "c1", "c2"], "c0", {"c2": MemberState("c2", "p2", "verified", False, None)},
     "member_ids"),
])
def test_invalid_groups_name_the_field(ids: list[str], leader: str,
                                       override: dict[str, MemberState], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_group(name="g", leader_id=leader, member_ids=ids,
                    members=members(11, **override))
    assert err.value.field == field


def test_a_client_already_in_an_active_group_is_a_conflict() -> None:
    with pytest.raises(Conflict) as err:
        check_group(name="g", leader_id="c0", member_ids=["c0", "c1", "c2"],
                    members=members(3, c1=MemberState("c1", "p1", "verified", False, "g-old")))
    assert err.value.extra["existing_group_id"] == "g-old"
