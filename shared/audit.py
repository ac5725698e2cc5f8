"""Who did what: every write a token makes is recorded with its subject (``sub``) and
OAuth2 client (``azp``), in the service's ``audit_log`` (``shared/sql/0003_audit.sql``).

No route code is involved:

- :class:`AuditMiddleware` opens an :class:`AuditRecord` for each write request (POST,
  PUT, PATCH, DELETE);
- ``shared.auth.current_principal`` puts the verified principal into it;
- ``shared.uow.UnitOfWork.commit`` inserts the row in the write's own transaction, so a
  write and its audit row commit or roll back together;
- a write that committed without a unit of work (a route using a pool connection of
  its own) is recorded by the middleware right after its successful (2xx) answer, with
  ``in_transaction`` false.

``GET /v1/audit`` (scope ``audit:read``) lists the rows newest first, filtered by
subject and/or client id, paged by an opaque keyset cursor.
"""

from __future__ import annotations

import base64
import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from shared import context
from shared.auth import Principal, require
from shared.errors import InvalidInput

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger("noria.audit")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

INSERT_SQL = (
    "INSERT INTO audit_log (subject, client_id, partner_id, username, method, route, path,"
    " status, correlation_id, in_transaction) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)


@dataclass
class AuditRecord:
    """One write request: who (once the token is verified) and what."""

    method: str
    path: str
    scope: dict[str, Any] = field(repr=False, default_factory=dict)
    principal: Principal | None = None
    recorded: bool = False

    @property
    def route(self) -> str:
        route = self.scope.get("route")
        return str(getattr(route, "path", None) or self.path)

    def args(self, status: int | None, in_transaction: bool) -> tuple[Any, ...]:
        p = self.principal
        assert p is not None
        return (p.sub, p.client_id, p.partner_id, p.username, self.method, self.route,
                self.path, status, context.correlation_id.get(), in_transaction)


current: ContextVar[AuditRecord | None] = ContextVar("noria_audit_record", default=None)


def note_principal(principal: Principal) -> None:
    """Called when a request's token is verified: a write's record learns who."""
    record = current.get()
    if record is not None and record.principal is None:
        record.principal = principal


async def record_in_transaction(conn: PoolConnectionProxy[Any]) -> None:
    """Within a unit of work's transaction, before it commits: the request's row, once."""
    record = current.get()
    if record is None or record.principal is None or record.recorded:
        return
    await conn.execute(INSERT_SQL, *record.args(None, True))
    record.recorded = True


class AuditMiddleware:
    """Opens the audit record of each write request; records after the answer the writes
    no unit of work recorded. Plain ASGI, like ``shared.app.ObserveMiddleware``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        record = AuditRecord(method=scope["method"], path=scope["path"], scope=scope)
        token = current.set(record)
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            current.reset(token)
        if record.principal is not None and not record.recorded and 200 <= status < 300:
            await self._record_after(scope, record, status)

    async def _record_after(self, scope: dict[str, Any], record: AuditRecord,
                            status: int) -> None:
        runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
        pool = getattr(runtime, "http_pool", None)
        if pool is None:
            return
        try:
            async with pool.acquire() as conn:
                await conn.execute(INSERT_SQL, *record.args(status, False))
            record.recorded = True
        except Exception:  # the answer is sent; the gap is logged, never raised
            log.exception("audit: could not record %s %s by %s", record.method, record.path,
                          record.principal.sub if record.principal else "?")


# ---------------------------------------------------------------- reading


class AuditEntry(BaseModel):
    id: int
    at: datetime
    subject: str
    client_id: str | None
    partner_id: str | None
    username: str | None
    method: str
    route: str
    path: str
    status: int | None
    correlation_id: str | None
    in_transaction: bool


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None
    """Pass as ``cursor`` for the next (older) page; null on the last page."""


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("a"):
            raise ValueError(raw)
        value = int(raw[1:])
        if not 0 < value < 2**63:
            raise ValueError(raw)
        return value
    except ValueError:
        raise InvalidInput("the cursor is not one this service gave", field="cursor") from None


def audit_router() -> APIRouter:
    router = APIRouter(prefix="/v1/audit", tags=["audit"])

    @router.get("", response_model=AuditPage)
    async def list_audit(
        request: Request,
        principal: Annotated[Principal, require("audit:read", "tenant:all")],
        subject: Annotated[str | None, Query(max_length=200,
                                             description="Only this token subject (sub)")] = None,
        client_id: Annotated[str | None, Query(
            max_length=200, description="Only this OAuth2 client (azp): a partner's")] = None,
        cursor: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> AuditPage:
        """Who did what on this service, newest first."""
        before = decode_cursor(cursor) if cursor else None
        async with request.app.state.runtime.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM audit_log WHERE ($1::text IS NULL OR subject = $1)"
                " AND ($2::text IS NULL OR client_id = $2)"
                " AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
                subject, client_id, before, limit + 1)
        items = [AuditEntry(**dict(r)) for r in rows[:limit]]
        more = len(rows) > limit
        return AuditPage(items=items,
                         next_cursor=encode_cursor(items[-1].id) if more and items else None)

    return router
