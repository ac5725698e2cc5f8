"""Every payments route declares what it answers, so the console's fake and schemathesis
can check the service strictly against its OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest

from services.payments.bootstrap import build_spec
from services.payments.settings import PaymentsSettings
from shared.app import create_app

PLATFORM = ("/health", "/metrics")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    settings = PaymentsSettings(database_url="postgresql://unused:unused@127.0.0.1:1/unused")
    return create_app(build_spec(settings)).openapi()


def schema_of(op: dict[str, Any], status: str) -> dict[str, Any] | None:
    content = op["responses"].get(status, {}).get("content", {})
    found: dict[str, Any] | None = content.get("application/json", {}).get("schema")
    return found


def test_every_success_answer_has_a_json_schema(doc: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path} {status}"
        for path, ops in doc["paths"].items() if not path.startswith(PLATFORM)
        for method, op in ops.items()
        for status in op["responses"] if status.startswith("2")
        if not schema_of(op, status)]
    assert missing == []


@pytest.mark.parametrize(("method", "path", "statuses"), [
    ("post", "/v1/periods/{period}/close", {"200", "201"}),
    ("post", "/v1/years/{year}/close", {"200", "201"}),
    ("post", "/v1/accruals/{day}", {"200", "201"}),
    ("post", "/v1/provisions/{day}", {"200", "201"}),
    ("put", "/v1/gl-accounts/{code}", {"200", "201"}),
    ("post", "/v1/journals", {"201"}),
    ("get", "/v1/journals", {"200"}),
    ("get", "/v1/payouts/{payout_id}/settlement", {"200"}),
])
def test_the_statuses_a_route_answers_are_declared(doc: dict[str, Any], method: str, path: str,
                                                   statuses: set[str]) -> None:
    op = doc["paths"][path][method]
    assert statuses <= {s for s in op["responses"] if s.startswith("2")}
    for status in statuses:
        assert schema_of(op, status), status


def test_statements_declare_json_and_csv(doc: dict[str, Any]) -> None:
    for kind in ("trial-balance", "income", "balance-sheet"):
        content = doc["paths"][f"/v1/statements/{kind}"]["get"]["responses"]["200"]["content"]
        assert {"application/json", "text/csv"} <= set(content), kind
        assert content["application/json"]["schema"]
    lines = doc["paths"]["/v1/gl-accounts/{code}/lines"]["get"]
    assert {p["name"] for p in lines["parameters"]} >= {"cursor", "office_id", "limit"}


def test_accounting_writes_document_the_idempotency_key(doc: dict[str, Any]) -> None:
    for method, path in (("post", "/v1/journals"), ("post", "/v1/periods/{period}/close"),
                         ("post", "/v1/accruals/{day}"), ("post", "/v1/provisions/{day}"),
                         ("put", "/v1/products/{product_id}/accounting"),
                         ("put", "/v1/provisioning/rates")):
        names = {p["name"] for p in doc["paths"][path][method]["parameters"]}
        assert "Idempotency-Key" in names, (method, path)
