"""How long a refused provider callback should wait before it comes back.

Past the knee payments refuses callbacks with 503 + ``Retry-After`` (the admission
bound, or no database connection free in time). A constant answer sends every refused
callback back together while the queue that refused it is still there, and the
provider's retries then add work when there is none to spare. The answer can instead
be the time the callbacks now in flight take to finish at the rate callbacks have been
finishing, growing with the queue and shrinking as it drains, up to a ceiling
(``callback_retry_after_max_s``). The ceiling is 1 s by default: measured once against
the constant second, the growing answer did not do better past the knee (refused
callbacks coming back later also leave the machine idle while they wait).
"""

from __future__ import annotations

import math


def retry_after_s(in_flight: int, finished_per_s: float, floor_s: int, ceiling_s: int) -> int:
    """Whole seconds, at least ``floor_s`` and at most ``ceiling_s``: the queue over the
    rate (a rate below one callback a second, as at start-up, counts as one)."""
    wait = math.ceil(max(in_flight, 0) / max(finished_per_s, 1.0))
    return max(floor_s, min(wait, ceiling_s))
