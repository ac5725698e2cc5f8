"""Close of business as a job: POST answers 202 at once, GET follows the run to its end."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import pytest

from services.loans.handlers.close_of_business import run_close_of_business
from services.loans.repository import cob as cob_sql
from services.loans.repository import cob_runs
from shared.db import DbLimits, connect, create_pool
from tests.infra import Infra
from tests.integration.loans.cob_helpers import close_of_business, wait_for_run
from tests.integration.loans.harness import running_loans

pytestmark = pytest.mark.integration

PENALTY = {"kind": "flat", "value": "50.00", "tolerance_days": 5}


async def test_post_starts_a_run_polled_to_its_par_figures(infra: Infra, isolated_schema
                                                           ) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        # flat 12 %, 1200 over 4 months; late: due 5 Feb + 5 Mar; current: first due 23 Mar
        product = await svc.create_product(penalty=PENALTY)
        late = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))
        await svc.active_loan(product, disbursed_on=date(2026, 2, 23))

        resp = await svc.client.post("/v1/close-of-business", headers=svc.operator,
                                     json={"business_date": "2026-03-20"})
        assert resp.status_code == 202, resp.text
        started = resp.json()
        assert resp.headers["location"] == f"/v1/close-of-business/{started['run_id']}"
        assert (started["business_date"], started["requested_by"], started["attempts"]) == (
            "2026-03-20", "op-maker", 1)
        assert started["status"] in ("running", "succeeded")

        run = await wait_for_run(svc.client, svc.operator, resp.headers["location"])
        assert run["status"] == "succeeded", run
        assert run["run_id"] == started["run_id"] and run["error"] is None
        assert run["finished_at"] >= run["started_at"]
        assert run["counts"] == {"installments_marked_overdue": 2, "penalties_applied": 2,
                                 "loans_reaged": 1, "repayment_due_events": 1,
                                 "in_arrears_events": 1}
        # PAR: the late loan (43 days) holds 1200 of the 2400 outstanding
        assert run["portfolio"]["business_date"] == "2026-03-20"
        assert run["portfolio"]["outstanding_principal"] == "2400.00"
        assert run["portfolio"]["par"] == {
            "par1": {"principal": "1200.00", "ratio": "0.5000"},
            "par30": {"principal": "1200.00", "ratio": "0.5000"},
            "par90": {"principal": "0.00", "ratio": "0.0000"}}
        assert run["portfolio"]["arrears_buckets"]["31-60"] == {"loans": 1,
                                                               "principal": "1200.00"}
        assert (await svc.get(late["id"]))["days_in_arrears"] == 43

        # the same date again is the same run, changing nothing
        outbox = await svc.count("outbox")
        again = await svc.client.post("/v1/close-of-business", headers=svc.operator,
                                      json={"business_date": "2026-03-20"})
        assert again.status_code == 200, again.text
        assert again.json()["run_id"] == run["run_id"]
        assert again.headers["location"] == resp.headers["location"]
        assert again.json()["attempts"] == 1 and again.json()["counts"] == run["counts"]
        assert await svc.count("outbox") == outbox
        assert (await svc.get(late["id"]))["outstanding"]["penalties"] == "100.00"

        listed = (await svc.client.get("/v1/close-of-business", headers=svc.operator)).json()
        assert [(r["run_id"], r["status"]) for r in listed["items"]] == [
            (run["run_id"], "succeeded")]

        # an earlier date is refused at once, an unknown run is a 404, partners cannot run it
        back = await svc.client.post("/v1/close-of-business", headers=svc.operator,
                                     json={"business_date": "2026-03-19"})
        assert back.status_code == 422 and back.json()["errors"][0]["field"] == "business_date"
        missing = await svc.client.get("/v1/close-of-business/nope", headers=svc.operator)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        partner = await svc.client.post("/v1/close-of-business", headers=svc.partner,
                                        json={"business_date": "2026-03-21"})
        assert partner.status_code == 403
        assert await svc.count("cob_runs") == 1


async def test_one_run_at_a_time_and_a_dead_runs_recovery(infra: Infra, isolated_schema
                                                          ) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product(penalty=PENALTY)
        late = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))

        # another process (the command line, another replica) is running 20 March:
        # it holds the lock on its session and has claimed the date
        other = await connect(svc.settings.database_url, schema=svc.settings.db_schema)
        try:
            assert await cob_runs.try_lock(other)
            claimed = await cob_runs.claim(other, date(2026, 3, 20), "cli")

            busy = await svc.client.post("/v1/close-of-business", headers=svc.operator,
                                         json={"business_date": "2026-03-21"})
            assert busy.status_code == 409, busy.text
            assert busy.headers["content-type"] == "application/problem+json"
            assert busy.json()["errors"][0]["field"] == "business_date"
            assert busy.json()["running_run_id"] == claimed["run_id"]

            same = await svc.client.post("/v1/close-of-business", headers=svc.operator,
                                         json={"business_date": "2026-03-20"})
            assert same.status_code == 202, same.text
            assert same.json()["run_id"] == claimed["run_id"]
            assert same.json()["status"] == "running"
            polled = await svc.client.get(same.headers["location"], headers=svc.operator)
            assert (polled.json()["status"], polled.json()["step"]) == ("running", "starting")
        finally:
            # ... and that process dies: its session ends, and the lock with it
            other.terminate()

        # the server notices the closed session a moment later; the next look after that
        # finds nobody holding the lock and ends the run as failed
        dead = await wait_for_run(svc.client, svc.operator, same.headers["location"])
        assert dead["status"] == "failed", dead
        assert dead["error"].startswith("interrupted") and dead["finished_at"] is not None
        assert (await svc.get(late["id"]))["days_in_arrears"] == 0   # nothing ran

        # posting the date again resumes it under the same run id
        resumed = await close_of_business(svc.client, svc.operator, "2026-03-20")
        assert resumed["status"] == "succeeded", resumed
        assert (resumed["run_id"], resumed["attempts"]) == (claimed["run_id"], 2)
        assert resumed["error"] is None
        assert resumed["portfolio"]["par"]["par30"]["ratio"] == "1.0000"
        assert (await svc.get(late["id"]))["days_in_arrears"] == 43
        # with no run alive, the next date starts
        assert (await close_of_business(svc.client, svc.operator, "2026-03-21"))[
            "status"] == "succeeded"


async def test_a_run_left_running_by_a_dead_process_is_failed_at_start_up(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as first:
        url, schema = first.settings.database_url, first.settings.db_schema
        async with first.pool.acquire() as conn:
            # what a process killed mid-run leaves: the row, and no session holding the lock
            await conn.execute("INSERT INTO cob_runs (business_date, status, step, requested_by)"
                               " VALUES ('2026-03-20', 'running', 'loans_reaged', 'op-x')")
    async with running_loans(infra, isolated_schema, database_url=url,
                             db_schema=schema) as svc:
        status = await svc.wait_until(
            "SELECT status FROM cob_runs WHERE business_date = '2026-03-20'"
            " AND status <> 'running'")
        assert status == "failed"
        listed = (await svc.client.get("/v1/close-of-business", headers=svc.operator)).json()
        assert [(r["status"], r["step"]) for r in listed["items"]] == [("failed", None)]
        run = await close_of_business(svc.client, svc.operator, "2026-03-20")
        assert (run["status"], run["attempts"]) == ("succeeded", 2)


async def test_the_command_line_path_still_answers_synchronously(infra: Infra, isolated_schema
                                                                 ) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        result = await run_close_of_business(svc.pool, date(2026, 3, 20), due_days_before=3,
                                             requested_by="cli")
        assert (result.status, result.rerun) == ("completed", False)
        again = await run_close_of_business(svc.pool, date(2026, 3, 20), due_days_before=3,
                                            requested_by="cli")
        assert again.rerun is True and again.stats["run_id"] == result.stats["run_id"]
        # a run made by the command line is visible to operators as a run
        run = await svc.client.get(f"/v1/close-of-business/{result.stats['run_id']}",
                                   headers=svc.operator)
        assert run.status_code == 200 and run.json()["status"] == "succeeded"
        assert run.json()["requested_by"] == "cli"


async def test_close_of_business_outlives_the_sessions_statement_timeout(
        infra: Infra, isolated_schema, monkeypatch: pytest.MonkeyPatch) -> None:
    """Background sessions carry a short statement timeout; close of business raises it
    for its own transactions (``cob_statement_timeout_s``), and only for them."""
    original = cob_sql.mark_overdue

    async def slow_mark_overdue(conn: Any, business_date: date) -> tuple[int, int]:
        await conn.execute("SELECT pg_sleep(0.8)")   # longer than the session allows
        return await original(conn, business_date)

    monkeypatch.setattr(cob_sql, "mark_overdue", slow_mark_overdue)
    async with running_loans(infra, isolated_schema) as svc:
        assert svc.settings.cob_statement_timeout_s == 30 * 60
        pool = await create_pool(svc.settings.database_url, schema=svc.settings.db_schema,
                                 min_size=1, max_size=2,
                                 limits=DbLimits(statement_timeout_s=0.3))
        try:
            async with pool.acquire() as conn:
                with pytest.raises(asyncpg.QueryCanceledError):   # the session's own limit
                    await conn.execute("SELECT pg_sleep(0.8)")
            with pytest.raises(asyncpg.QueryCanceledError):   # a close of business limit
                await run_close_of_business(pool, date(2026, 3, 20), due_days_before=3,
                                            requested_by="cli", statement_timeout_s=0.2)
            result = await run_close_of_business(
                pool, date(2026, 3, 20), due_days_before=3, requested_by="cli",
                statement_timeout_s=svc.settings.cob_statement_timeout_s)
            assert result.status == "completed" and result.stats["run_id"]
            async with pool.acquire() as conn:   # the session's limit is back
                assert await conn.fetchval("SHOW statement_timeout") == "300ms"
        finally:
            await pool.close()
