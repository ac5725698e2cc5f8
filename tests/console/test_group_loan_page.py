"""The group-loan page: a solidarity group's members (each with their own loan, arrears
and schedule), the one disbursement saga of the group, and joint liability; and the branch
pages answering 404 for an office, officer or group loan outside the operator's office."""

from __future__ import annotations

import uuid

import httpx

from tests.console.fake_loans import group_loan_record
from tests.console.fake_platform import State
from tests.console.test_pages import text_of


def arranged_group(state: State, late_member: int | None = None) -> tuple[str, list[str]]:
    """A group loan of three members, one loan and one schedule each, disbursed by one
    saga; ``late_member`` (an index) is in arrears."""
    tag = uuid.uuid4().hex[:6]
    members: list[tuple[str, str, int]] = []
    names = []
    for n, name in enumerate(("Fatima Zahra", "Khadija Amrani", "Aicha Tazi")):
        loan_id, client_id = f"L-g{tag}{n}", f"C-g{tag}{n}"
        names.append(f"{name} {tag}")
        state.clients[client_id] = {"id": client_id, "full_name": names[-1],
                                    "phone": f"+21261234567{n}", "kyc_status": "verified"}
        state.loans[loan_id] = {"id": loan_id, "client_id": client_id, "status": "active",
                                "product_id": "P-weekly", "principal": "1000.00", "term": 4,
                                "outstanding": {"principal": "1000.00", "interest": "18.40",
                                                "fees": "0.00", "penalties": "0.00",
                                                "total": "1018.40"}}
        state.schedules[loan_id] = [
            {"number": k, "due_date": f"2026-12-{7 * k:02d}", "principal": "250.00",
             "interest": "4.60", "fees": "0.00", "penalties": "0.00", "total": "254.60",
             "paid": "0.00", "status": "overdue" if (k == 1 and n == late_member) else
             "pending"} for k in range(1, 5)]
        members.append((loan_id, client_id, 3 if n == late_member else 0))
    group_loan_id, saga_id = f"GL-{tag}", f"S-{tag}"
    state.sagas[saga_id] = {
        "id": saga_id, "type": "group_disbursement", "loan_id": group_loan_id,
        "state": "completed", "current_step": "done", "deadline": None, "attempts": 1,
        "data": {"amount": "3000.00", "group_loan_id": group_loan_id},
        "created_at": "2026-11-29T09:00:00+00:00", "updated_at": "2026-11-29T09:00:05+00:00",
        "timeline": [{"at": "2026-11-29T09:00:01+00:00", "event": "GroupCreditReserved",
                      "from_state": "reserving_credit", "to_state": "disbursing",
                      "detail": "3 members"},
                     {"at": "2026-11-29T09:00:05+00:00", "event": "GroupDisbursed",
                      "from_state": "disbursing", "to_state": "completed", "detail": ""}]}
    state.servicing.group_loans[group_loan_id] = group_loan_record(group_loan_id, members,
                                                                   saga_id=saga_id)
    return group_loan_id, names


async def test_the_group_loan_page_shows_members_schedules_and_the_saga(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    group_loan_id, names = arranged_group(fake_state, late_member=1)
    page = await signed_in.get(f"/group-loans/{group_loan_id}")
    body = text_of(page).replace("\u202f", " ")
    assert page.status_code == 200, body
    assert 'data-figure="total-principal">3 000,00 MAD' in body
    for name in names:
        assert name in body
    assert body.count('class="section schedule"') == 3
    assert "07/12/2026" in body or "2026-12-07" in body
    assert "GroupDisbursed" in body and "GroupCreditReserved" in body
    # joint liability: one member late, the whole group said to be in arrears
    assert "Un membre est en retard" in body
    assert body.count('class="late"') == 1


async def test_a_group_loan_found_by_its_id_and_one_that_is_not(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    group_loan_id, _ = arranged_group(fake_state)
    found = await signed_in.get("/group-loans", params={"id": f" {group_loan_id} "})
    assert found.status_code == 303
    assert found.headers["location"] == f"/group-loans/{group_loan_id}"
    up_to_date = text_of(await signed_in.get(found.headers["location"]))
    assert "Aucun membre en retard" in up_to_date
    missing = await signed_in.get("/group-loans/GL-nowhere")
    assert missing.status_code == 404
    assert 'data-status="404"' in missing.text


async def test_an_office_or_officer_outside_the_operators_office_answers_not_found(
        signed_in: httpx.AsyncClient) -> None:
    """loans answers 404 for an office, officer or sheet the token cannot see (as for one
    that does not exist): the console's page answers 404 too, with the service's word."""
    for path in ("/branches?office_id=nowhere", "/branches?officer_id=nobody",
                 "/collection-sheet?officer_id=nobody&date=2026-11-30",
                 "/branch-cash?office_id=nowhere&date=2026-11-30",
                 "/group-loans/GL-elsewhere"):
        page = await signed_in.get(path)
        assert page.status_code == 404, path
        assert 'class="panel problem"' in page.text and 'data-status="404"' in page.text, path
    assert (await signed_in.get("/branches")).status_code == 200


async def test_a_group_saga_validating_payees_is_among_the_sagas_needing_attention(
        signed_in: httpx.AsyncClient, fake_state: State) -> None:
    """Before any payout the group saga asks whether every member's wallet can receive the
    money; a lookup without an answer is asked again and can wait — the monitor shows it."""
    group_loan_id, _ = arranged_group(fake_state)
    saga_id = fake_state.servicing.group_loans[group_loan_id]["saga_id"]
    fake_state.sagas[saga_id].update(state="validating_payees", current_step="validate_payees",
                                     updated_at="2026-11-29T09:00:01+00:00")
    page = await signed_in.get("/sagas")
    assert page.status_code == 200
    body = text_of(page)
    section = body[body.index('data-state="validating_payees"'):]
    section = section[:section.index("</section>")]
    assert "Vérification des bénéficiaires" in section
    assert f'href="/sagas/{saga_id}"' in section and "validate_payees" in section
    assert 'title="validating_payees">vérification des bénéficiaires</span>' in section
    only = text_of(await signed_in.get("/sagas", params={"state": "validating_payees",
                                                         "lang": "en"}))
    assert "Validating payees" in only and saga_id in only
