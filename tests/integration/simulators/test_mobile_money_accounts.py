"""The simulator's account-status lookup (GSMA ``GET /accounts/msisdn/{msisdn}/status``),
read by payments' own provider client: a wallet that refuses payouts is ``unavailable``,
an unknown account is a refusal only with the GSMA identification error, and a lookup
that gets no answer is no answer — never a yes or a no."""

from __future__ import annotations

import pytest

from services.payments.providers.gsma import ProviderClient
from services.payments.settings import ProviderConfig
from tests.integration.simulators.conftest import Sim, new_msisdn

pytestmark = pytest.mark.integration


def client(sim: Sim, timeout_s: float = 5.0) -> ProviderClient:
    config = ProviderConfig(base_url=str(sim.http.base_url), request_timeout_s=timeout_s)
    return ProviderClient("sim", config)


async def test_a_wallet_that_takes_payouts_is_available(sim: Sim) -> None:
    msisdn = new_msisdn()
    resp = await sim.http.get(f"/accounts/msisdn/{msisdn}/status")
    assert resp.status_code == 200
    assert resp.json()["accountStatus"] == "available"
    view = await client(sim).account_status(msisdn)
    assert (view.seen, view.account_status) == ("available", "available")
    assert sim.world.lookups.count(msisdn) == 2


async def test_a_wallet_refusing_every_payout_is_unavailable(sim: Sim) -> None:
    msisdn = new_msisdn()
    await sim.configure(msisdn, failure_rate=1.0)
    view = await client(sim).account_status(msisdn)
    assert view.seen == "unavailable" and "unavailable" in view.reason
    # a wallet that refuses only some payouts is still a wallet that takes them
    other = new_msisdn()
    await sim.configure(other, failure_rate=0.5)
    assert (await client(sim).account_status(other)).seen == "available"
    # the knob overrides the guess either way
    await sim.configure(msisdn, account_status="available")
    assert (await client(sim).account_status(msisdn)).seen == "available"


async def test_an_unknown_account_is_refused_on_the_providers_word(sim: Sim) -> None:
    msisdn = new_msisdn()
    await sim.configure(msisdn, account_status="unknown")
    resp = await sim.http.get(f"/accounts/msisdn/{msisdn}/status")
    assert resp.status_code == 404 and resp.json()["errorCategory"] == "identification"
    view = await client(sim).account_status(msisdn)
    assert view.seen == "unavailable" and view.account_status == "unknown"


async def test_a_lookup_without_an_answer_is_neither_yes_nor_no(sim: Sim) -> None:
    msisdn = new_msisdn()
    await sim.configure(msisdn, lookup_unanswered=True)
    view = await client(sim, timeout_s=0.5).account_status(msisdn)
    assert view.seen == "unanswered" and "no answer" in view.reason
    # a 404 that is not the provider's identification error proves nothing either
    bad = await client(sim).http.get("/accounts/msisdn/x/nothing")
    assert bad.status_code == 404
    assert (await client(sim).account_status("not-a-number")).seen == "unanswered"
