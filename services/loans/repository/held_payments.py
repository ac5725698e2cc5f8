"""Repayments held for review and later matched to a loan by payments' operators."""

from __future__ import annotations

from services.loans.repository import Conn


async def release(conn: Conn, payment_id: str, matched_to: str) -> bool:
    """Move the payment's ``held`` row out of ``repayments`` (kept in
    ``held_repayments_matched``), so that it can be applied once. False when it is no
    longer held (another delivery released it first: that one decided the payment)."""
    moved: str | None = await conn.fetchval(
        "WITH gone AS (DELETE FROM repayments WHERE payment_id = $1 AND outcome = 'held'"
        " RETURNING payment_id, loan_id, amount, reason, received_at, recorded_at)"
        " INSERT INTO held_repayments_matched (payment_id, reference, amount, reason,"
        " received_at, held_at, matched_to)"
        " SELECT payment_id, loan_id, amount, reason, received_at, recorded_at, $2 FROM gone"
        " RETURNING payment_id", payment_id, matched_to)
    return moved is not None

