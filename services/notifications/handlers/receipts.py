"""Delivery receipts: stored as they arrive, applied in batches to the message parts;
a message whose parts all ended is finished (SmsDelivered / SmsFailed)."""

from __future__ import annotations

from typing import Any

from services.notifications.domain.messages import Receipt, Status, combine_parts
from services.notifications.handlers.policies import Policies
from services.notifications.metrics import SMS_FINISHED
from services.notifications.repository import receipts as receipts_repo
from shared.contracts.notifications import SmsDelivered, SmsFailed
from shared.uow import UnitOfWork


async def record_receipt(uow: UnitOfWork, provider: str, receipt: Receipt) -> None:
    await receipts_repo.store_receipt(uow.conn, provider, receipt.provider_message_id,
                                      receipt.stat, receipt.error)


async def apply_receipts(uow: UnitOfWork, policies: Policies) -> int:
    """Apply the receipts whose parts are known; finish messages whose parts all ended.

    One batch, set-based: the outcome is the one applying the receipts one by one,
    in order, gives — a part takes its last receipt's status, and a message ends
    with the first receipt after which its parts combine to an outcome.
    """
    conn = uow.conn
    # the receipts, with their messages' parts: one statement
    rows = await receipts_repo.pending_receipts(conn)
    if not rows:
        return 0
    parts = receipts_repo.part_statuses(rows)
    last: dict[tuple[str, str], tuple[Status, str]] = {}
    ends: dict[Any, tuple[Status, Receipt]] = {}  # message id -> (outcome, its receipt)
    for row in rows:
        receipt = Receipt(row["provider_message_id"], row["stat"])
        part = (row["provider"], row["provider_message_id"])
        last[part] = (receipt.status, receipt.stat)
        statuses = parts[(row["message_id"], row["attempt"])]
        statuses[part] = receipt.status
        if row["message_id"] in ends:
            continue  # an earlier receipt ended it (or tried to): later ones change nothing
        outcome = combine_parts(list(statuses.values()))
        if outcome is not None:
            ends[row["message_id"]] = (outcome, receipt)
    # receipts applied, parts set, messages ended: one statement
    finished = await receipts_repo.apply_batch(
        conn, [row["id"] for row in rows],
        [(p, i, st, stat) for (p, i), (st, stat) in last.items()],
        [(mid, outcome, None if outcome == "delivered" else f"receipt {receipt.stat}",
          True if outcome == "failed" else None)
         for mid, (outcome, receipt) in ends.items()], policies.clock())
    for mid, (outcome, _) in ends.items():
        msg = finished.get(mid)
        if msg is None:
            continue
        key = str(msg["id"])
        SMS_FINISHED.labels(outcome).inc()
        if outcome == "delivered":
            uow.emit(SmsDelivered(message_id=key, client_id=msg["client_id"],
                                  template=msg["template"], provider=msg["provider"]), key=key)
        else:
            uow.emit(SmsFailed(message_id=key, client_id=msg["client_id"],
                               template=msg["template"], provider=msg["provider"],
                               reason=msg["reason"] or outcome, permanent=outcome == "failed"),
                     key=key)
    return len(rows)
