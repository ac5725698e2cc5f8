"""The mobile-money simulator's bad habits, each seen from outside over HTTP.

Every habit is a behaviour knob (``POST /sim/config``, per msisdn here; the
``NORIA_SIM_*`` variables set the defaults). What each test shows is what a
payments service would observe: the answer (or none), the callbacks, the status
query by our correlation id, the wallet and the daily statement.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from simulators.mobile_money.__main__ import behaviour_from_env
from tests.integration.simulators.conftest import Sim, new_msisdn, until

pytestmark = pytest.mark.integration


async def test_executes_a_payout_and_never_answers(sim: Sim) -> None:
    msisdn = new_msisdn()
    await sim.configure(msisdn, execute_without_answer=True)
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    cid, ref, answer = await sim.pay_out(msisdn, "5000.00", expiry=expiry, timeout_s=1.0)
    assert answer is None  # the caller's request timed out
    txn = await sim.completed(cid)  # …yet the money moved
    assert txn["amount"] == "5000.00" and txn["clientCorrelationId"] == cid
    assert (await sim.wallet(msisdn))["payouts"] == "5000.00"
    [entry] = await sim.listed(cid)
    assert entry["status"] == "completed" and entry["requestReference"] == ref
    assert entry["transactionReference"] == txn["transactionReference"]
    # no callback: the simulator logged it as never sent
    deliveries = (await sim.http.get("/sim/callbacks", params={
        "reference": txn["transactionReference"]})).json()
    assert [d["lost"] for d in deliveries] == [True]
    assert sim.receiver.of(txn["transactionReference"]) == []
    # the status query by our own request reference finds it too
    found = (await sim.http.get("/transactions", params={
        "requestingOrganisationTransactionReference": ref})).json()
    assert [t["transactionReference"] for t in found] == [txn["transactionReference"]]
    # resending the same request is answered and moves no more money
    _, _, again = await sim.pay_out(msisdn, "5000.00", correlation_id=cid, reference=ref,
                                    expiry=expiry)
    assert again is not None and again.status_code == 202, again
    assert again.json()["status"] == "completed"
    assert (await sim.wallet(msisdn))["payouts"] == "5000.00"


async def test_executes_at_once_and_answers_after_the_deadline(sim: Sim) -> None:
    msisdn = new_msisdn()
    late_s, deadline_s = 2.0, 0.5
    await sim.configure(msisdn, answer_delay_s=late_s)
    sent = time.monotonic()
    cid, _, answer = await sim.pay_out(msisdn, "1500.00", timeout_s=deadline_s)
    assert answer is None  # nothing within our deadline
    txn = await sim.completed(cid)  # the status query already knows it
    assert time.monotonic() - sent < late_s  # …before the callback came
    assert sim.receiver.of(txn["transactionReference"]) == []
    [callback] = await sim.receiver.wait(txn["transactionReference"])
    assert callback.at - sent >= late_s
    assert callback.method == "PUT" and callback.body["transactionStatus"] == "completed"
    assert (await sim.wallet(msisdn))["payouts"] == "1500.00"
    assert len(await sim.listed(cid)) == 1


async def test_ignores_expiry_by_default(sim: Sim) -> None:
    config = (await sim.http.get("/sim/config")).json()
    assert config["default"]["honours_expiry"] is False
    msisdn = new_msisdn()
    expired = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cid, _, answer = await sim.pay_out(msisdn, "700.00", expiry=expired)
    assert answer is not None and answer.status_code == 202, answer
    await sim.completed(cid)
    assert (await sim.wallet(msisdn))["payouts"] == "700.00"
    assert len(await sim.listed(cid)) == 1


async def test_a_provider_honouring_expiry_refuses_or_fails_after_it(sim: Sim) -> None:
    msisdn = new_msisdn()
    await sim.configure(msisdn, honours_expiry=True, processing_delay_s=0.5)
    expired = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    cid, _, answer = await sim.pay_out(msisdn, "700.00", expiry=expired)
    assert answer is not None and answer.status_code == 400
    assert answer.json()["errorCode"] == "requestExpired"
    assert (await sim.http.get(f"/responses/{cid}")).status_code == 404
    # accepted before its expiry, due to execute after it: failed, nothing moved
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.2)
    cid, _, answer = await sim.pay_out(msisdn, "700.00", expiry=soon)
    assert answer is not None and answer.status_code == 202
    scid = answer.json()["serverCorrelationId"]

    async def final() -> dict[str, Any] | None:
        state = (await sim.http.get(f"/requeststates/{scid}")).json()
        return state if state["status"] != "pending" else None

    state = await until(final, what="the request's final state")
    assert state["status"] == "failed"
    assert "expired" in state["errorReference"]["errorDescription"]
    wallet = await sim.wallet(msisdn)
    assert wallet["payouts"] == "0.00" and wallet["balance"] == "0.00"
    assert await sim.listed(cid) == []


async def test_calls_back_before_answering(sim: Sim) -> None:
    msisdn = new_msisdn()
    await sim.configure(msisdn, callback_before_answer=True)
    cid, _, answer = await sim.pay_out(msisdn, "900.00")
    answered = time.monotonic()
    assert answer is not None and answer.status_code == 202
    assert answer.json()["status"] == "pending"  # the answer is older than the callback
    txn = await sim.completed(cid)
    [callback] = sim.receiver.of(txn["transactionReference"])  # already there
    assert callback.at < answered
    assert callback.body["transactionStatus"] == "completed"
    assert callback.body["clientCorrelationId"] == cid
    assert (await sim.wallet(msisdn))["payouts"] == "900.00"


@pytest.mark.parametrize("delay_s", [0.0, 1.0])
async def test_reports_one_transaction_twice_with_two_webhook_ids(
        sim: Sim, delay_s: float) -> None:
    msisdn = new_msisdn()
    await sim.configure(msisdn, duplicate_callbacks=True, duplicate_delay_s=delay_s)
    cid, _, answer = await sim.pay_out(msisdn, "650.00")
    assert answer is not None and answer.status_code == 202
    txn = await sim.completed(cid)
    first, second = await sim.receiver.wait(txn["transactionReference"], count=2)
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
    assert first.body == second.body
    assert second.at - first.at >= delay_s
    assert (await sim.wallet(msisdn))["payouts"] == "650.00"  # one payout, reported twice
    assert len(await sim.listed(cid)) == 1


async def test_the_statement_lists_what_the_status_api_denied(sim: Sim) -> None:
    msisdn = new_msisdn()
    unknown_s = 3.0
    await sim.configure(msisdn, status_unknown_s=unknown_s, lose_callbacks=True)
    accepted = time.monotonic()
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    cid, ref, answer = await sim.pay_out(msisdn, "2500.00", expiry=expiry)
    assert answer is not None and answer.status_code == 202
    scid = answer.json()["serverCorrelationId"]
    # the statement lists it as completed…
    async def listed() -> list[dict[str, Any]] | None:
        return await sim.listed(cid) or None

    [entry] = await until(listed, what="the statement entry")
    assert entry["status"] == "completed" and entry["amount"] == "2500.00"
    # …while every status query still says it does not know it
    assert time.monotonic() - accepted < unknown_s
    assert await sim.status(cid) == (404, None)
    assert (await sim.http.get(f"/requeststates/{scid}")).status_code == 404
    assert (await sim.http.get(
        f"/transactions/{entry['transactionReference']}")).status_code == 404
    assert (await sim.http.get("/transactions", params={"clientCorrelationId": cid})
            ).json() == []
    assert (await sim.http.get("/transactions", params={
        "requestingOrganisationTransactionReference": ref})).json() == []
    # a resend with the same correlation id gets no answer and moves nothing
    _, _, again = await sim.pay_out(msisdn, "2500.00", correlation_id=cid, reference=ref,
                                    expiry=expiry, timeout_s=0.5)
    assert again is None
    assert (await sim.wallet(msisdn))["payouts"] == "2500.00"
    # later the status API knows it, completed
    txn = await sim.completed(cid, timeout_s=unknown_s + 5)
    assert txn["transactionReference"] == entry["transactionReference"]
    assert (await sim.wallet(msisdn))["payouts"] == "2500.00"


async def test_statement_per_day_in_a_zone_and_as_csv(sim: Sim) -> None:
    msisdn = new_msisdn()
    cid, ref, answer = await sim.pay_out(msisdn, "1200.00")
    assert answer is not None and answer.status_code == 202
    txn = await sim.completed(cid)
    done = dt.datetime.fromisoformat(txn["modificationDate"])
    utc_day = done.astimezone(dt.UTC).date()
    local_day = done.astimezone(ZoneInfo("Africa/Casablanca")).date()
    statement = await sim.statement(local_day, tz="Africa/Casablanca")
    assert statement["timezone"] == "Africa/Casablanca" and statement["date"] == str(local_day)
    [entry] = [e for e in statement["entries"] if e["clientCorrelationId"] == cid]
    assert entry == {
        "transactionReference": txn["transactionReference"], "type": "disbursement",
        "purpose": "disbursement", "status": "completed", "amount": "1200.00",
        "currency": "MAD", "msisdn": msisdn, "account": ref, "requestReference": ref,
        "clientCorrelationId": cid, "serverCorrelationId": entry["serverCorrelationId"],
        "createdAt": entry["createdAt"], "completedAt": done.isoformat()}
    assert statement["count"] == len(statement["entries"])
    assert await sim.listed(cid, utc_day)  # the default zone is UTC
    assert await sim.listed(cid, utc_day - dt.timedelta(days=1)) == []
    resp = await sim.http.get(f"/sim/statements/{local_day}",
                              params={"tz": "Africa/Casablanca", "format": "csv"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    header, *rows = resp.text.splitlines()
    assert header.split(",")[:5] == ["transactionReference", "type", "purpose", "status",
                                     "amount"]
    assert any(r.startswith(txn["transactionReference"] + ",") and cid in r for r in rows)
    bad = await sim.http.get(f"/sim/statements/{local_day}", params={"tz": "Mars/Olympus"})
    assert bad.status_code == 400


def test_the_knobs_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORIA_SIM_HONOURS_EXPIRY", "true")
    monkeypatch.setenv("NORIA_SIM_EXECUTE_WITHOUT_ANSWER", "yes")
    monkeypatch.setenv("NORIA_SIM_ANSWER_DELAY_S", "90")
    monkeypatch.setenv("NORIA_SIM_STATUS_UNKNOWN_S", "600")
    behaviour = behaviour_from_env()
    assert behaviour.honours_expiry and behaviour.execute_without_answer
    assert behaviour.answer_delay_s == 90.0 and behaviour.status_unknown_s == 600.0
    assert not behaviour.callback_before_answer and behaviour.duplicate_delay_s == 0.0
    monkeypatch.setenv("NORIA_SIM_CALLBACK_BEFORE_ANSWER", "maybe")
    with pytest.raises(SystemExit):
        behaviour_from_env()


async def test_a_request_reference_nobody_sent_is_not_found(sim: Sim) -> None:
    resp = await sim.http.get("/transactions", params={
        "requestingOrganisationTransactionReference": f"saga-{uuid.uuid4().hex}"})
    assert resp.status_code == 200 and resp.json() == []
    assert (await sim.http.get("/transactions")).status_code == 400
