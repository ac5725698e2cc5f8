"""The loans service: ``serve`` | ``migrate`` | ``close-of-business YYYY-MM-DD``."""
import asyncio
import json
import sys
from datetime import date

from services.loans.bootstrap import build_spec
from services.loans.handlers.close_of_business import run_close_of_business
from services.loans.settings import LoansSettings
from shared.app import serve
from shared.db import create_pool
from shared.migrations import migrate
from shared.settings import load_settings
from shared.telemetry import setup_logging


async def _close_of_business(settings: LoansSettings, business_date: date) -> None:
    schema = settings.db_schema or "loans"
    await migrate(settings.database_url, schema, build_spec(settings).migrations_dir)
    pool = await create_pool(settings.database_url, schema=schema, max_size=2)
    try:
        result = await run_close_of_business(
            pool, business_date, due_days_before=settings.repayment_due_days_before,
            requested_by="cli", statement_timeout_s=settings.cob_statement_timeout_s)
        print(json.dumps(result.to_json()))
    finally:
        await pool.close()


if len(sys.argv) > 1 and sys.argv[1] == "close-of-business":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m services.loans close-of-business YYYY-MM-DD")
    loans_settings = load_settings(LoansSettings)
    setup_logging("loans", loans_settings.log_level)
    asyncio.run(_close_of_business(loans_settings, date.fromisoformat(sys.argv[2])))
else:
    serve(build_spec, sys.argv[1:])
