"""JSON shapes the operator routes share: PAR ratios, snapshots, close-of-business runs."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
COUNTS = ("installments_marked_overdue", "penalties_applied", "loans_reaged",
          "repayment_due_events", "in_arrears_events")
STATUS = {"running": "running", "completed": "succeeded", "failed": "failed"}


def ratio(part: Decimal, total: Decimal) -> str:
    if total <= 0:
        return "0.0000"
    return str((part / total).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def snapshot_json(snap: Any) -> dict[str, Any]:
    total = snap["outstanding_principal"]
    return {
        "business_date": snap["business_date"].isoformat(),
        "loans_active": snap["loans_active"],
        "outstanding_principal": str(total),
        "par": {f"par{n}": {"principal": str(snap[f"par{n}_principal"]),
                            "ratio": ratio(snap[f"par{n}_principal"], total)}
                for n in (1, 30, 90)},
        "arrears_buckets": {b: snap["buckets"].get(b, {"loans": 0, "principal": "0.00"})
                            for b in BUCKETS},
    }


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def run_json(run: Any, snapshot: Any = None) -> dict[str, Any]:
    """One close-of-business run; ``portfolio`` (PAR) is the date's snapshot once it succeeded."""
    stats = dict(run["stats"])
    status = STATUS.get(run["status"], run["status"])
    return {
        "run_id": run["run_id"],
        "business_date": run["business_date"].isoformat(),
        "status": status,
        "step": run["step"] if status == "running" else None,
        "requested_by": run["requested_by"] or stats.get("requested_by"),
        "attempts": run["attempts"],
        "started_at": _iso(run["started_at"]),
        "heartbeat_at": _iso(run["heartbeat_at"]),
        "finished_at": _iso(run["finished_at"]),
        "seconds": stats.get("seconds"),
        "error": run["error"],
        "counts": {k: stats[k] for k in COUNTS if k in stats},
        "portfolio": None if snapshot is None or status != "succeeded"
        else snapshot_json(snapshot),
        "links": {"self": f"/v1/close-of-business/{run['run_id']}"},
    }
