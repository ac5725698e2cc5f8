"""The compulsory savings each loan product requires (``product_compulsory_savings``)."""

from __future__ import annotations

from services.loans.domain.compulsory_savings import CompulsorySavingsRule
from services.loans.repository import Conn


async def get(conn: Conn, product_id: str) -> CompulsorySavingsRule | None:
    row = await conn.fetchrow(
        "SELECT share_of_principal, amount, savings_product_id FROM product_compulsory_savings"
        " WHERE product_id = $1", product_id)
    if row is None:
        return None
    return CompulsorySavingsRule(row["share_of_principal"], row["amount"],
                                 row["savings_product_id"])


async def put(conn: Conn, product_id: str, rule: CompulsorySavingsRule, by: str) -> None:
    await conn.execute(
        "INSERT INTO product_compulsory_savings (product_id, share_of_principal, amount,"
        " savings_product_id, updated_by) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (product_id) DO UPDATE SET share_of_principal = $2, amount = $3,"
        " savings_product_id = $4, updated_by = $5, updated_at = now()",
        product_id, rule.share_of_principal, rule.amount, rule.savings_product_id, by)
