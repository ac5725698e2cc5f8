"""The savings service: ``serve`` | ``migrate`` | ``close-of-business YYYY-MM-DD``."""
import asyncio
import json
import sys
from datetime import date

from services.savings.bootstrap import build_spec
from services.savings.handlers.close_of_business import run_close_of_business
from services.savings.settings import SavingsSettings
from shared.app import serve
from shared.clock import today
from shared.db import create_pool
from shared.migrations import migrate
from shared.settings import load_settings
from shared.telemetry import setup_logging


async def _close_of_business(settings: SavingsSettings, business_date: date) -> None:
    schema = settings.db_schema or "savings"
    await migrate(settings.database_url, schema, build_spec(settings).migrations_dir)
    pool = await create_pool(settings.database_url, schema=schema, max_size=2)
    try:
        result = await run_close_of_business(
            pool, business_date, today=today(), requested_by="cli",
            topic_prefix=settings.topic_prefix, max_days=settings.cob_max_catch_up_days,
            statement_timeout_s=settings.cob_statement_timeout_s)
        print(json.dumps(result.to_json(), default=str))
    finally:
        await pool.close()


if len(sys.argv) > 1 and sys.argv[1] == "close-of-business":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m services.savings close-of-business YYYY-MM-DD")
    savings_settings = load_settings(SavingsSettings)
    setup_logging("savings", savings_settings.log_level)
    asyncio.run(_close_of_business(savings_settings, date.fromisoformat(sys.argv[2])))
else:
    serve(build_spec, sys.argv[1:])
