"""What an office-scoped operator token sees of the books: its office's subtree only
(``Principal.can_see_office``). A head-office token (no office) sees every office.
What lies outside the token's subtree is answered 404, exactly like another partner's
data; only a consolidated view no office may read is refused (403)."""

from __future__ import annotations

from services.payments.repository import Conn
from services.payments.repository import offices as offices_repo
from shared.auth import Principal
from shared.errors import Forbidden, NotFound


async def offices_for(conn: Conn, principal: Principal, office_id: str | None
                      ) -> list[str] | None:
    """The offices a report covers: ``office_id`` and its subtree; without one, every
    office (None) for a head-office token, the token's own subtree for an office's."""
    if office_id is None:
        if principal.office_id is None:
            return None
        office_id = principal.office_id
    if principal.office_id is not None and office_id != principal.office_id:
        path = await offices_repo.path_of(conn, office_id)
        if not principal.can_see_office(path):
            raise NotFound(f"no office {office_id}", field="office_id")
    return await offices_repo.subtree(conn, office_id)


def head_office_only(principal: Principal, what: str) -> None:
    """A consolidated view no single office may read."""
    if principal.office_id is not None:
        raise Forbidden(f"{what} covers every office: a token scoped to office "
                        f"{principal.office_id} cannot read it", field="office_id")


async def sees_loan(conn: Conn, principal: Principal, loan_id: str | None, *,
                    client_id: str | None = None) -> bool:
    """A loan's books are visible to the offices above the loan's office (its client's
    office when payments has not learnt the loan yet)."""
    if principal.office_id is None:
        return True
    office = await offices_repo.loan_office(conn, loan_id) if loan_id else None
    if office is None and client_id:
        office = await offices_repo.client_office(conn, client_id)
    path = await offices_repo.path_of(conn, office) if office else None
    return office == principal.office_id or principal.can_see_office(path)


async def check_loan(conn: Conn, principal: Principal, loan_id: str) -> None:
    """404 for a loan outside the token's office subtree."""
    if not await sees_loan(conn, principal, loan_id):
        raise NotFound(f"no loan {loan_id}", field="loan_id")
