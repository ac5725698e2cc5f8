"""The OpenAPI document declares the problems the platform really sends."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import jsonschema
from fastapi import FastAPI, Query
from pydantic import BaseModel

from shared.errors import Conflict
from shared.http import PROBLEM, health_router, install_error_handlers
from shared.openapi import PROBLEM_STATUSES, describe_problems


class ThingIn(BaseModel):
    name: str


class ThingOut(BaseModel):
    id: str


def service() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    describe_problems(app)

    @app.post("/v1/things", response_model=ThingOut, status_code=201)
    async def create(body: ThingIn, strict: Annotated[bool, Query()] = False) -> ThingOut:
        if body.name == "taken":
            raise Conflict("a thing named taken exists", field="name", existing_id="t-1")
        return ThingOut(id="t-2")

    @app.get("/v1/things/{thing_id}", response_model=ThingOut)
    async def get(thing_id: str) -> ThingOut:
        return ThingOut(id=thing_id)

    async def fine() -> tuple[bool, str]:
        return True, "ok"

    app.include_router(health_router({"database": fine}))
    return app


def test_every_operation_declares_problem_json_for_every_error_status() -> None:
    doc = service().openapi()
    for path in ("/v1/things", "/v1/things/{thing_id}"):
        for op in doc["paths"][path].values():
            for status in PROBLEM_STATUSES:
                content = op["responses"][status]["content"]
                assert list(content) == [PROBLEM], (path, status)
                assert content[PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "ValidationError" not in doc["components"]["schemas"]
    assert doc["paths"]["/v1/things"]["post"]["responses"]["201"]["content"][
        "application/json"]["schema"] == {"$ref": "#/components/schemas/ThingOut"}
    # the probes answer in their own shape, never a problem
    assert not set(PROBLEM_STATUSES) & set(doc["paths"]["/health/live"]["get"]["responses"])


def test_the_document_is_built_once() -> None:
    app = service()
    assert app.openapi() is app.openapi()


async def test_what_is_sent_validates_against_the_declared_problem() -> None:
    app = service()
    doc = app.openapi()
    schema = {"$ref": "#/components/schemas/Problem", "components": doc["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://svc") as api:
        answers = [
            await api.post("/v1/things", json={"name": 3}),              # 422, field errors
            await api.post("/v1/things", content=b"{",
                           headers={"content-type": "application/json"}),
            await api.post("/v1/things", json={"name": "taken"}),        # 409 with an extension
            await api.get("/v1/nothing/here"),                           # 404 from routing
            await api.post("/v1/things", params={"strict": "maybe"}, json={"name": "x"}),
        ]
    statuses = [r.status_code for r in answers]
    assert statuses == [422, 422, 409, 404, 422]
    for resp in answers:
        assert resp.headers["content-type"].startswith(PROBLEM)
        body: dict[str, Any] = resp.json()
        assert list(validator.iter_errors(body)) == [], body
    assert answers[2].json()["existing_id"] == "t-1"
    assert answers[0].json()["errors"] == [
        {"field": "name", "message": "Input should be a valid string"}]
