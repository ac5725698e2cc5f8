"""HTTP plumbing: ``application/problem+json`` errors (RFC 9457) and health routes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asyncpg.exceptions import (
    CharacterNotInRepertoireError,
    CheckViolationError,
    UntranslatableCharacterError,
)
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.auth import AuthError
from shared.db import DATABASE_BUSY, DATABASE_UNAVAILABLE, database_busy, database_unavailable
from shared.errors import (
    Conflict,
    DomainError,
    Forbidden,
    IdempotencyMismatch,
    InFlight,
    InvalidInput,
    NotFound,
)

log = logging.getLogger("noria.http")
PROBLEM = "application/problem+json"
STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (IdempotencyMismatch, 422),
    (InFlight, 409),
    (Conflict, 409),
    (InvalidInput, 422),
    (Forbidden, 403),
]


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) if parts else "body"


def status_for(exc: DomainError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 400


def install_error_handlers(app: FastAPI) -> None:
    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = []
        for err in exc.errors():
            msg = str(err.get("msg", "invalid"))
            msg = msg.removeprefix("Value error, ")
            errors.append({"field": _field_path(err.get("loc", ())), "message": msg})
        fields = ", ".join(e["field"] for e in errors)
        return problem(
            422, "Invalid request", f"invalid field(s): {fields}",
            type_="https://noria.dev/problems/validation", errors=errors,
        )

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
        return problem(
            status_for(exc), exc.title, exc.detail,
            type_=f"https://noria.dev/problems/{exc.code}", errors=errors, **exc.extra,
        )

    async def on_auth(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        title = {401: "Unauthorized", 403: "Forbidden"}.get(exc.status, "Service Unavailable")
        return problem(exc.status, title, exc.detail, headers=headers)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(exc.status_code, str(exc.detail), str(exc.detail),
                       headers=getattr(exc, "headers", None))

    async def on_unstorable_text(request: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL text cannot hold U+0000: input that carries it is the client's error,
        # and its transaction has been rolled back like any other refused request.
        log.info("refused text PostgreSQL cannot store on %s %s: %s", request.method,
                 request.url.path, exc)
        return problem(422, "Invalid request",
                       "text fields must not contain the NUL character (U+0000)",
                       type_="https://noria.dev/problems/validation",
                       errors=[{"field": "body", "message": "contains U+0000"}])

    async def on_check_violation(request: Request, exc: Exception) -> JSONResponse:
        # A rule the database enforces refused the transaction, at a statement or at its
        # commit (an account of the institution's moved past zero by two concurrent
        # postings, each of which passed the code's own check): rolled back whole.
        assert isinstance(exc, CheckViolationError)
        log.warning("refused by the database's rule %s on %s %s: %s",
                    exc.constraint_name, request.method, request.url.path, exc)
        code = ("insufficient_balance" if exc.constraint_name == "account_not_negative"
                else "constraint_violation")
        return problem(409, "Refused by the books' rules",
                       "the change would break a rule the database enforces"
                       f" ({exc.constraint_name or 'check'}); nothing was written",
                       type_=f"https://noria.dev/problems/{code}")

    async def on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The database restarting or out of reach: nothing was done, the client may retry.
        log.warning("database unavailable on %s %s: %s: %s", request.method,
                    request.url.path, type(exc).__name__, exc)
        return problem(503, "Service unavailable",
                       "the database is unavailable for a moment; retry",
                       type_="https://noria.dev/problems/unavailable",
                       headers={"Retry-After": "1"})

    async def on_database_busy(request: Request, exc: Exception) -> JSONResponse:
        # A statement cancelled by statement_timeout or a lock not granted within
        # lock_timeout: the transaction was rolled back, nothing was done.
        log.warning("database busy on %s %s: %s: %s", request.method, request.url.path,
                    type(exc).__name__, exc)
        return problem(503, "Service unavailable",
                       "the database is too busy to answer in time; retry",
                       type_="https://noria.dev/problems/unavailable",
                       headers={"Retry-After": "2"})

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):
            return await on_database_unavailable(request, exc)
        if database_busy(exc):
            return await on_database_busy(request, exc)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "an unexpected error occurred; it was logged")

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(AuthError, on_auth)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(CharacterNotInRepertoireError, on_unstorable_text)
    app.add_exception_handler(UntranslatableCharacterError, on_unstorable_text)
    app.add_exception_handler(CheckViolationError, on_check_violation)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, on_database_unavailable)
    for busy in DATABASE_BUSY:
        app.add_exception_handler(busy, on_database_busy)
    app.add_exception_handler(Exception, on_unexpected)


ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]


def health_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready")
    async def ready() -> JSONResponse:
        results: dict[str, dict[str, Any]] = {}
        ok = True
        for name, check in checks.items():
            try:
                passed, detail = await check()
            except Exception as exc:  # a check that raises is a failed check
                passed, detail = False, f"{type(exc).__name__}: {exc}"
            results[name] = {"ok": passed, "detail": detail}
            ok = ok and passed
        return JSONResponse({"ready": ok, "checks": results}, status_code=200 if ok else 503)

    return router
