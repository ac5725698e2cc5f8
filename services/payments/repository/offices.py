"""The office tree and each client's office, as payments knows them from
``clients.events``; and the offices of a subtree (what an office's report rolls up)."""

from __future__ import annotations

from decimal import Decimal

from services.payments.repository import Conn


async def learn_office(conn: Conn, office_id: str, path: str, *, name: str | None = None,
                       kind: str | None = None, status: str | None = None,
                       authoritative: bool = False) -> None:
    """Record an office's path. The office's own events (``authoritative``) set it; a
    path a client's event carries only fills in an office not known yet."""
    if authoritative:
        await conn.execute(
            "INSERT INTO offices (office_id, path, name, office_kind, status)"
            " VALUES ($1, $2, $3, $4, coalesce($5, 'open')) ON CONFLICT (office_id) DO UPDATE"
            " SET path = $2, name = coalesce($3, offices.name),"
            " office_kind = coalesce($4, offices.office_kind),"
            " status = coalesce($5, offices.status), updated_at = now()",
            office_id, path, name, kind, status)
    else:
        await conn.execute(
            "INSERT INTO offices (office_id, path) VALUES ($1, $2)"
            " ON CONFLICT (office_id) DO NOTHING", office_id, path)


async def set_client_office(conn: Conn, client_id: str, office_id: str,
                            office_path: str | None) -> None:
    await conn.execute(
        "INSERT INTO client_offices (client_id, office_id, office_path) VALUES ($1, $2, $3)"
        " ON CONFLICT (client_id) DO UPDATE SET office_id = $2,"
        " office_path = coalesce($3, client_offices.office_path), updated_at = now()",
        client_id, office_id, office_path)


async def move_client_loans(conn: Conn, client_id: str, office_id: str) -> int:
    """A transferred client's loans belong to its new office from now on (their later
    lines are booked there)."""
    status = await conn.execute(
        "UPDATE loan_dimensions SET office_id = $2, updated_at = now()"
        " WHERE client_id = $1 AND office_id IS DISTINCT FROM $2", client_id, office_id)
    return int(status.split()[-1]) if status else 0


async def remember_loan_client(conn: Conn, loan_id: str, client_id: str) -> None:
    await conn.execute(
        "INSERT INTO loan_dimensions (loan_id, client_id) VALUES ($1, $2)"
        " ON CONFLICT (loan_id) DO UPDATE SET client_id = $2, updated_at = now()",
        loan_id, client_id)


async def path_of(conn: Conn, office_id: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT path FROM offices WHERE office_id = $1", office_id)
    return value


async def subtree(conn: Conn, office_id: str) -> list[str]:
    """The office and every office below it (by path); just the office when its path is
    not known."""
    path = await path_of(conn, office_id)
    if path is None:
        return [office_id]
    rows = await conn.fetch(
        "SELECT office_id FROM offices WHERE path = $1 OR path LIKE $2",
        path, path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%")
    return sorted({office_id, *(r["office_id"] for r in rows)})


async def loan_office(conn: Conn, loan_id: str) -> str | None:
    """The office a loan's lines are booked to (its own, else its client's)."""
    value: str | None = await conn.fetchval(
        "SELECT coalesce(d.office_id, c.office_id) FROM loan_dimensions d"
        " LEFT JOIN client_offices c ON c.client_id = d.client_id WHERE d.loan_id = $1",
        loan_id)
    return value


async def client_office(conn: Conn, client_id: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT office_id FROM client_offices WHERE client_id = $1", client_id)
    return value


async def loan_balances_elsewhere(conn: Conn, client_id: str, office_id: str,
                                  kinds: tuple[str, ...]) -> list[tuple[str, str, str, Decimal]]:
    """(loan, account, office, debits less credits) of the client's loans' accounts
    whose id starts with one of ``kinds`` (``portfolio:`` …), per office other than
    ``office_id`` where they hold something. Lines without an office (booked before
    offices were known) are left where they are."""
    rows = await conn.fetch(
        "SELECT d.loan_id, l.account_id, l.office_id,"
        " sum(CASE l.side WHEN 'debit' THEN l.amount ELSE -l.amount END) AS net"
        " FROM loan_dimensions d"
        " JOIN unnest($3::text[]) k(prefix) ON true"
        " JOIN journal_lines l ON l.account_id = k.prefix || d.loan_id"
        " WHERE d.client_id = $1 AND l.office_id IS NOT NULL AND l.office_id <> $2"
        " GROUP BY d.loan_id, l.account_id, l.office_id"
        " HAVING sum(CASE l.side WHEN 'debit' THEN l.amount ELSE -l.amount END) <> 0"
        " ORDER BY d.loan_id, l.office_id, l.account_id", client_id, office_id, list(kinds))
    return [(r["loan_id"], r["account_id"], r["office_id"], r["net"]) for r in rows]
