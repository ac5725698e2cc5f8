"""Domain errors. They carry no HTTP status: the API layer maps them."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule of the business was broken by the request."""

    title = "Request refused"
    code = "domain_error"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class NotFound(DomainError):
    title = "Not found"
    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate, illegal transition)."""

    title = "Conflict"
    code = "conflict"


class InvalidInput(DomainError):
    """Input that is well-formed JSON but breaks a business validation rule."""

    title = "Invalid input"
    code = "invalid_input"


class Forbidden(DomainError):
    title = "Forbidden"
    code = "forbidden"


class IdempotencyMismatch(DomainError):
    """The same idempotency key was reused with a different request."""

    title = "Idempotency key reused with a different request"
    code = "idempotency_key_reused"


class InFlight(DomainError):
    """A request with the same idempotency key is still being processed."""

    title = "Request in progress"
    code = "request_in_progress"
