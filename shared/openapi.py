"""What a service's OpenAPI document says about its errors.

Every error the platform sends is ``application/problem+json`` (RFC 9457), built by
:func:`shared.http.problem`: ``type``, ``title``, ``status``, ``detail``, the field
errors of a refused input in ``errors``, and a domain error's own extension members
(``status_now``, ``existing_client_id``…). FastAPI's generated document knows none of
that: it describes 422 as its own validation error in ``application/json`` and no
other error at all. :func:`describe_problems` rewrites the document once, when it is
first built, so that every operation declares :class:`Problem` for the statuses any
route may answer with.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from shared.http import PROBLEM

PROBLEM_STATUSES: dict[str, str] = {
    "400": "The request was refused by a rule of the business",
    "401": "No valid bearer token",
    "403": "The token lacks a scope the operation needs, or the operator may not do this",
    "404": "The resource does not exist",
    "409": "The request clashes with the resource's current state, or the same "
           "idempotency key is still being processed",
    "422": "The input is invalid: the failing fields are in ``errors``",
    "429": "Too many requests; retry after ``Retry-After`` seconds",
    "503": "A dependency (the database, a provider) is unavailable for a moment; retry "
           "after ``Retry-After`` seconds",
}

# Operations that answer no problem: the probes are unauthenticated, take no input,
# and say "not ready" in their own shape.
_WITHOUT_PROBLEMS = {"health"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


class FieldError(BaseModel):
    """One refused input field: its dotted path (``body`` for the body as a whole)."""

    field: str
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details.

    ``type`` names the kind of problem (``https://noria.dev/problems/<code>``, or
    ``about:blank`` when the status says it all). A domain error may add members of
    its own (``status_now``, ``existing_client_id``, ``state``…).
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", examples=["https://noria.dev/problems/conflict"])
    title: str = Field(examples=["Conflict"])
    status: int = Field(ge=400, le=599, examples=[409])
    detail: str = Field(examples=["cannot approve a loan that is active"])
    instance: str | SkipJsonSchema[None] = Field(
        default=None, description="A URI for this occurrence (RFC 9457); not sent today")
    errors: list[FieldError] | SkipJsonSchema[None] = Field(
        default=None, description="The refused fields, when the problem is about input")


def problem_schemas() -> dict[str, Any]:
    """The JSON schemas of :class:`Problem` and :class:`FieldError` for ``components``."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    for prop in ("instance", "errors"):
        schema["properties"][prop].pop("default", None)
    return {**defs, "Problem": schema}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {
        PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _declares_own(response: dict[str, Any]) -> bool:
    """A response a route declared with its own body (not FastAPI's validation error)."""
    for media in (response.get("content") or {}).values():
        ref = (media.get("schema") or {}).get("$ref", "")
        if ref and not ref.endswith("/HTTPValidationError"):
            return True
    return False


def add_problems(doc: dict[str, Any]) -> dict[str, Any]:
    """Declare :class:`Problem` for every error status of every operation of ``doc``."""
    for operations in doc.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
                continue
            if _WITHOUT_PROBLEMS & set(operation.get("tags", ())):
                continue
            responses = operation.setdefault("responses", {})
            for status, description in PROBLEM_STATUSES.items():
                existing = responses.get(status)
                if existing is not None and _declares_own(existing):
                    continue
                declared = (existing or {}).get("description")
                if not declared or declared == "Validation Error":
                    declared = description
                responses[status] = _problem_response(declared)
            operation["responses"] = dict(sorted(responses.items()))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(problem_schemas())
    if '/HTTPValidationError"' not in json.dumps(doc.get("paths", {})):
        for name in _FASTAPI_VALIDATION:
            schemas.pop(name, None)
    return doc


def describe_problems(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe the platform's problem responses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
