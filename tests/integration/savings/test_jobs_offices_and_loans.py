"""Close of business as a job over HTTP, office scoping, the payment reference, and the
links to loans (compulsory savings held for the disbursement saga, standing
instructions), on real PostgreSQL and Kafka with the other services played by the test."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from shared.clock import today
from shared.contracts import clients, loans, savings
from tests.identity import mint_token
from tests.integration.savings.conftest import OPERATOR_SCOPES, Rig, new_msisdn
from tests.kafka_facts import until


async def test_close_of_business_is_a_job_polled_by_its_run(rig: Rig) -> None:
    date = today()
    too_late = await rig.api.post("/v1/savings/close-of-business", headers=rig.auth(),
                                  json={"business_date": str(date + dt.timedelta(days=1))})
    assert too_late.status_code == 422 and too_late.json()["errors"][0]["field"] == (
        "business_date")
    resp = await rig.api.post("/v1/savings/close-of-business", headers=rig.auth(),
                              json={"business_date": str(date)})
    assert resp.status_code in (200, 202), resp.text
    run = resp.json()
    assert resp.headers["location"] == f"/v1/savings/close-of-business/{run['run_id']}"

    async def finished() -> dict[str, Any] | None:
        got = await rig.api.get(resp.headers["location"], headers=rig.auth())
        assert got.status_code == 200, got.text
        body = dict(got.json())
        return body if body["status"] != "running" else None
    done = await until(finished, "the savings close of business finished")
    assert done is not None and done["status"] == "succeeded", done
    assert sorted(done["counts"]) == ["accruals", "dormancy", "maturities", "postings"]

    again = await rig.api.post("/v1/savings/close-of-business", headers=rig.auth(),
                               json={"business_date": str(date)})
    assert again.status_code == 200 and again.json()["run_id"] == run["run_id"]
    listed = await rig.api.get("/v1/savings/close-of-business", headers=rig.auth())
    assert run["run_id"] in [r["run_id"] for r in listed.json()["items"]]
    missing = await rig.api.get("/v1/savings/close-of-business/nope", headers=rig.auth())
    assert missing.status_code == 404
    reader = await rig.api.get(resp.headers["location"],
                               headers=rig.auth(scopes=("savings:read",)))
    assert reader.status_code == 403


async def test_accounts_show_their_reference_and_are_found_in_any_case(rig: Rig) -> None:
    product = await rig.product()
    account = await rig.account(product, await rig.client(), opening="100.00")
    assert account["id"] == account["id"].lower()
    assert account["payment_reference"] == f"SAV-{account['id']}"
    for alias in (account["id"].upper(), f"sav-{account['id']}"):
        resp = await rig.api.get(f"/v1/savings/accounts/{alias}", headers=rig.auth())
        assert resp.status_code == 200 and resp.json()["id"] == account["id"], resp.text
    unknown = await rig.api.get("/v1/savings/accounts/not-an-id", headers=rig.auth())
    assert unknown.status_code == 404


async def test_office_scoped_tokens_see_their_subtree_and_follow_a_transfer(rig: Rig) -> None:
    client_id = f"client-{uuid.uuid4().hex[:10]}"
    agadir, marrakech = "ho/r-souss/b-agadir", "ho/r-tensift/b-marrakech"
    await rig.send(clients.ClientRegistered(
        client_id=client_id, partner_id="partner-a", full_name="Khadija Test",
        phone=new_msisdn(), language="fr", sms_consent=True, office_id="b-agadir",
        office_path=agadir), key=client_id)
    await rig.send(clients.ClientKycVerified(client_id=client_id, verified_by="checker"),
                   key=client_id)

    async def known() -> bool:
        async with rig.pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT kyc_status = 'verified' FROM client_projection WHERE client_id = $1",
                client_id) is True
    await until(known, "savings knows the client")
    account = await rig.account(await rig.product(), client_id, opening="50.00")
    assert account["office_path"] == agadir

    def office(path: str) -> dict[str, str]:
        token = mint_token(sub=f"officer-{path}", scopes=OPERATOR_SCOPES,
                           office_id=path.rsplit("/", 1)[-1], office_path=path)
        return {"Authorization": f"Bearer {token}"}

    path = f"/v1/savings/accounts/{account['id']}"
    assert (await rig.api.get(path, headers=office("ho/r-souss"))).status_code == 200
    assert (await rig.api.get(path, headers=office(marrakech))).status_code == 404
    assert (await rig.api.get(path + "/statement", headers=office(marrakech))).status_code == 404
    listed = await rig.api.get("/v1/savings/accounts", headers=office(marrakech),
                               params={"client_id": client_id})
    assert listed.json()["items"] == []

    await rig.send(clients.ClientTransferred(
        client_id=client_id, request_id="t-1", partner_id="partner-a",
        from_office_id="b-agadir", from_office_path=agadir, to_office_id="b-marrakech",
        to_office_path=marrakech, requested_by="op-1", approved_by="op-2"), key=client_id)

    async def moved() -> bool:
        return (await rig.api.get(path, headers=office(marrakech))).status_code == 200
    await until(moved, "the account followed its client to Marrakech")
    assert (await rig.api.get(path, headers=office("ho/r-souss"))).status_code == 404


async def test_a_disbursement_waits_for_its_compulsory_savings(rig: Rig) -> None:
    loan_product = f"lp-{uuid.uuid4().hex[:8]}"
    product = await rig.product(kind="compulsory", loan_product_id=loan_product,
                                share_of_principal="0.10")
    client_id = await rig.client()
    loan_id = str(uuid.uuid4())
    saga_id = str(uuid.uuid4())
    hold = savings.HoldCompulsorySavings(
        saga_id=saga_id, loan_id=loan_id.upper(), client_id=client_id,
        partner_id="partner-a", loan_product_id=loan_product, principal=Decimal("10000.00"))
    await rig.send(hold, loan_id)
    (short,) = await rig.reader.wait_for("CompulsorySavingsInsufficient", saga_id=saga_id)
    assert short.key == loan_id and short.payload["reason"] == "no_account"
    assert short.payload["required"] == "1000.00" and short.payload["shortfall"] == "1000.00"

    resp = await rig.api.post("/v1/savings/accounts", headers=rig.keyed(), json={
        "client_id": client_id, "product_id": product, "opening_deposit": "400.00",
        "linked_loan_id": loan_id})
    assert resp.status_code == 201, resp.text
    account_id = resp.json()["id"]
    await rig.consumed()
    assert rig.reader.matching("CompulsorySavingsHeld", saga_id=saga_id) == []

    assert (await rig.deposit(account_id, "600.00")).status_code == 201
    (held,) = await rig.reader.wait_for("CompulsorySavingsHeld", saga_id=saga_id)
    assert held.payload["held"] == "1000.00" and held.payload["account_ids"] == [account_id]

    await rig.send(hold, loan_id)                     # the saga's resend: the state again
    await rig.reader.wait_for("CompulsorySavingsHeld", saga_id=saga_id, count=2)
    blocked = await rig.withdraw(account_id, "10.00")
    assert blocked.status_code == 409                  # held until the loan ends

    await rig.send(savings.ReleaseCompulsorySavings(saga_id=saga_id, loan_id=loan_id,
                                                    reason="payout failed"), loan_id)
    await rig.reader.wait_for("CompulsorySavingsReleased", saga_id=saga_id)
    assert (await rig.get(account_id))["linked_loan_closed"] is True
    holds = await rig.api.get("/v1/savings/compulsory-holds", headers=rig.auth(),
                              params={"loan_id": loan_id})
    assert [h["status"] for h in holds.json()["items"]] == ["released"]


async def test_nothing_required_is_held_at_once(rig: Rig) -> None:
    saga_id = str(uuid.uuid4())
    loan_id = str(uuid.uuid4())
    await rig.send(savings.HoldCompulsorySavings(
        saga_id=saga_id, loan_id=loan_id, client_id="client-x", partner_id="partner-a",
        loan_product_id=f"lp-none-{uuid.uuid4().hex[:6]}", principal=Decimal("5000.00")),
        loan_id)
    (held,) = await rig.reader.wait_for("CompulsorySavingsHeld", saga_id=saga_id)
    assert held.payload["required"] == "0.00" or Decimal(held.payload["required"]) == 0


async def test_a_standing_instruction_pays_a_due_installment_once(rig: Rig) -> None:
    product = await rig.product()
    client_id = await rig.client()
    account = await rig.account(product, client_id, opening="300.00")
    loan_id = str(uuid.uuid4())
    resp = await rig.api.put(f"/v1/savings/accounts/{account['id']}/standing-instructions",
                             headers=rig.auth(), json={"loan_id": loan_id})
    assert resp.status_code == 200, resp.text
    due = loans.RepaymentDue(loan_id=loan_id, client_id=client_id, business_date=today(),
                             due_date=today() + dt.timedelta(days=3), installment=1,
                             amount=Decimal("200.00"))
    await rig.send(due, loan_id)
    (paid,) = await rig.reader.wait_for("StandingInstructionPayment", loan_id=loan_id)
    assert paid.payload["amount"] == "200.00" and paid.key == account["id"]
    await rig.send(due, loan_id)                        # announced again: not paid again
    await rig.consumed()
    assert len(rig.reader.matching("StandingInstructionPayment", loan_id=loan_id)) == 1
    after = await rig.get(account["id"])
    assert after["ledger_balance"] == "100.00"
    lines = (await rig.statement(account["id"]))["lines"]
    assert [(ln["kind"], ln["amount"]) for ln in lines][-1] == ("loan_repayment", "-200.00")

    other = await rig.client()
    await rig.send(loans.RepaymentDue(loan_id=loan_id, client_id=other,
                                      business_date=today(), due_date=today(),
                                      installment=2, amount=Decimal("50.00")), loan_id)
    await rig.consumed()
    assert len(rig.reader.matching("StandingInstructionPayment", loan_id=loan_id)) == 1
