"""Close-of-business runs (``cob_runs``): one row per business date, progress and result.

The bookkeeping is :class:`shared.cob_runs.CobRuns` over the savings schema's table. Of
several ``running`` rows (a date and the missed dates it catches up), the run in
progress is the latest date's.
"""

from __future__ import annotations

import logging

from shared.cob_runs import CobRuns

RUNS = CobRuns("noria.savings.close_of_business", "savings close of business",
               logging.getLogger("noria.savings.cob"))
LOCK_KEY = RUNS.lock_key

try_lock = RUNS.try_lock
unlock = RUNS.unlock
by_id = RUNS.by_id
running = RUNS.running
by_date = RUNS.by_date
latest_completed = RUNS.latest_completed
fail_stale = RUNS.fail_stale
claim = RUNS.claim
progress = RUNS.progress
complete = RUNS.complete
fail = RUNS.fail
recent = RUNS.recent
