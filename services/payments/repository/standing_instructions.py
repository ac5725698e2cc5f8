"""Installments paid from voluntary savings (``standing_instruction_payments``)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from services.payments.repository import Conn


async def record(conn: Conn, *, payment_id: str, payments_id: uuid.UUID, account_id: str,
                 loan_id: str, installment: int, due_date: dt.date, amount: Decimal,
                 value_date: dt.date) -> bool:
    """False if this savings payment is recorded already."""
    row = await conn.fetchval(
        "INSERT INTO standing_instruction_payments (payment_id, payments_id, account_id,"
        " loan_id, installment, due_date, amount, value_date)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING 1",
        payment_id, payments_id, account_id, loan_id, installment, due_date, amount,
        value_date)
    return row is not None


async def by_payment(conn: Conn, payments_id: uuid.UUID) -> tuple[str, str] | None:
    """(savings' payment id, the savings account) of a repayment, if it was one."""
    row = await conn.fetchrow(
        "SELECT payment_id, account_id FROM standing_instruction_payments"
        " WHERE payments_id = $1", payments_id)
    return None if row is None else (row["payment_id"], row["account_id"])
