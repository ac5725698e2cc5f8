"""The saga monitor follows the organisation: an office-scoped token lists, counts and
reads the sagas of its subtree's loans only; another office's saga is not there (404),
exactly like another partner's data."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.infra import Infra
from tests.integration.loans.harness import running_loans
from tests.integration.loans.org_helpers import (
    active_loan_of,
    client_in,
    office_token,
    organisation,
)

pytestmark = pytest.mark.integration

D0 = date(2026, 1, 5)
AGADIR, TANGER, SOUSS = (office_token("b-agadir"), office_token("b-tanger"),
                         office_token("r-souss"))


async def test_the_saga_monitor_shows_an_office_its_subtree_only(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        await organisation(svc)
        product = await svc.create_product()
        fatima = await client_in(svc, "b-agadir", "lo-youssef", "Fatima Z")
        khadija = await client_in(svc, "m-1", "lo-salma", "Khadija A")
        omar = await client_in(svc, "b-tanger", "lo-karim", "Omar T")
        a = await active_loan_of(svc, fatima, product, disbursed_on=D0)
        m = await active_loan_of(svc, khadija, product, disbursed_on=D0)
        t = await active_loan_of(svc, omar, product, disbursed_on=D0)

        async def sagas(headers: dict[str, str], **params: Any) -> dict[str, Any]:
            resp = await svc.client.get("/v1/sagas", headers=headers,
                                        params={"limit": 500, **params})
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()
            return body

        everything = await sagas(svc.operator)
        assert {x["id"] for x in everything["items"]} >= {
            a["saga_id"], m["saga_id"], t["saga_id"]}
        for token, mine in ((AGADIR, (a, m)), (SOUSS, (a, m)), (TANGER, (t,))):
            ids = {loan["saga_id"] for loan in mine}
            body = await sagas(token)
            assert {x["id"] for x in body["items"]} == ids, body
            assert sum(body["counts"].values()) == len(ids), body["counts"]
            for loan in (a, m, t):
                resp = await svc.client.get(f"/v1/sagas/{loan['saga_id']}", headers=token)
                assert resp.status_code == (200 if loan["saga_id"] in ids else 404), resp.text
        # the loan filter does not reach past the office either
        assert (await sagas(AGADIR, loan_id=t["id"]))["items"] == []
        assert (await sagas(TANGER, loan_id=t["id"]))["items"][0]["id"] == t["saga_id"]
