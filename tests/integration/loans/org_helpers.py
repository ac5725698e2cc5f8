"""The organisation as clients publishes it, for the loans tests: offices, staff, clients
in an office with an officer, groups, and tokens scoped to an office."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from shared.auth import ROLE_SCOPES
from shared.contracts.clients import ClientRegistered, GroupFormed, OfficeOpened, StaffAssigned
from tests.identity import mint_token
from tests.integration.loans.harness import Loans

OFFICES = (("r-souss", "region", "ho", "ho/r-souss"),
           ("b-agadir", "branch", "r-souss", "ho/r-souss/b-agadir"),
           ("m-1", "mobile_unit", "b-agadir", "ho/r-souss/b-agadir/m-1"),
           ("r-nord", "region", "ho", "ho/r-nord"),
           ("b-tanger", "branch", "r-nord", "ho/r-nord/b-tanger"))
PATHS = {o[0]: o[3] for o in OFFICES} | {"ho": "ho"}
STAFF = (("lo-youssef", "b-agadir"), ("lo-salma", "m-1"), ("lo-karim", "b-tanger"),
         ("lo-nadia", "b-tanger"))


def office_token(office_id: str | None, sub: str = "op-office") -> dict[str, str]:
    tok = mint_token(sub=sub, scopes=ROLE_SCOPES["operator"], office_id=office_id,
                     office_path=PATHS[office_id] if office_id else None)
    return {"Authorization": f"Bearer {tok}"}


async def organisation(svc: Loans) -> None:
    for office_id, kind, parent, path in OFFICES:
        await svc.bus.send(OfficeOpened(office_id=office_id, office_kind=kind,
                                        name=office_id, parent_id=parent, path=path,
                                        opened_by="hq"), key=office_id)
    for staff_id, office_id in STAFF:
        await svc.bus.send(StaffAssigned(staff_id=staff_id, full_name=staff_id.title(),
                                         role="loan_officer", office_id=office_id,
                                         office_path=PATHS[office_id], assigned_by="hq"),
                           key=staff_id)
    await svc.wait_until(f"SELECT count(*) = {len(STAFF)} FROM staff_projection")
    await svc.wait_until(f"SELECT count(*) = {len(OFFICES) + 1} FROM office_projection")


async def client_in(svc: Loans, office_id: str, officer_id: str | None,
                    name: str = "Amina B") -> str:
    client_id = f"cli_{uuid.uuid4().hex[:10]}"
    await svc.bus.send(ClientRegistered(
        client_id=client_id, partner_id=svc.partner_id, full_name=name,
        phone="+212612345678", language="fr", sms_consent=True, office_id=office_id,
        office_path=PATHS[office_id], officer_id=officer_id), key=client_id)
    await svc.wait_until(f"SELECT 1 FROM client_projection WHERE client_id = '{client_id}'"
                         f" AND office_id = '{office_id}' AND partner_id IS NOT NULL")
    return client_id


async def group_of(svc: Loans, name: str, office_id: str, officer_id: str,
                   members: list[str]) -> str:
    group_id = f"grp_{uuid.uuid4().hex[:8]}"
    await svc.bus.send(GroupFormed(group_id=group_id, partner_id=svc.partner_id, name=name,
                                   leader_id=members[0], member_ids=members,
                                   office_id=office_id, office_path=PATHS[office_id],
                                   officer_id=officer_id), key=group_id)
    await svc.wait_until(f"SELECT 1 FROM group_projection WHERE group_id = '{group_id}'")
    return group_id


async def active_loan_of(svc: Loans, client_id: str, product_id: str, *,
                         principal: str = "1200.00", term: int = 4,
                         disbursed_on: date | None = None) -> dict[str, Any]:
    loan = await svc.apply(client_id, product_id, principal, term)
    saga_id = await svc.approve(loan["id"])
    await svc.bus.wait_for("ReserveCredit", saga_id=saga_id)
    await svc.reserve(saga_id, loan["id"], client_id)
    await svc.bus.wait_for("DisburseLoan", saga_id=saga_id)
    await svc.complete(saga_id, loan["id"], client_id, principal, disbursed_on)
    body = await svc.wait_status(loan["id"], "active")
    body["saga_id"] = saga_id
    return body
