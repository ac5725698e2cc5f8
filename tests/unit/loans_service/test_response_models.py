"""Every loans route says what it answers, and the models say exactly what the routes
build: a shape passed through its model comes out unchanged, money still a string."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.loans.api import schemas
from services.loans.api.installments import item_json
from services.loans.api.views import run_json, snapshot_json
from services.loans.bootstrap import build_spec
from services.loans.domain.loan import Loan, LoanStatus
from services.loans.handlers.views import loan_json
from services.loans.repository.loans import Installment
from services.loans.settings import LoansSettings
from shared.app import create_app

AT = datetime(2026, 3, 20, 23, 30, 0, 100000, tzinfo=UTC)


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    settings = LoansSettings(database_url="postgresql://loans@127.0.0.1:1/none")
    document: dict[str, Any] = create_app(build_spec(settings)).openapi()
    return document


def loans_operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in openapi["paths"].items()
            for method, op in ops.items()
            if path.startswith("/v1/") and not path.startswith("/v1/dead-letters")]


def test_every_route_declares_a_model_for_each_success(openapi: dict[str, Any]) -> None:
    operations = loans_operations(openapi)
    assert len(operations) >= 20
    for method, path, op in operations:
        successes = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert successes, (method, path)
        for code, response in successes.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema.get("$ref", "").startswith("#/components/schemas/"), \
                (method, path, code, schema)


def test_the_status_codes_of_creation_and_of_a_job_are_documented(
        openapi: dict[str, Any]) -> None:
    def codes(method: str, path: str) -> set[str]:
        return {c for c in openapi["paths"][path][method]["responses"] if c.startswith("2")}

    assert codes("post", "/v1/loans") == {"201"}
    assert codes("post", "/v1/products") == {"201"}
    assert codes("post", "/v1/close-of-business") == {"200", "202"}


def test_no_answer_carries_money_as_a_json_number(openapi: dict[str, Any]) -> None:
    numbers = set()
    for name, schema in openapi["components"]["schemas"].items():
        if not name.endswith("Out") and name not in {"ParSet", "ArrearsBuckets", "SagaData",
                                                     "DueTotals", "CobCounts"}:
            continue
        for prop, spec in schema.get("properties", {}).items():
            kinds = [spec.get("type")] + [s.get("type") for s in spec.get("anyOf", [])]
            if "number" in kinds:
                numbers.add(f"{name}.{prop}")
    # durations, not money: a run's length, how long a saga has been in doubt
    assert numbers == {"CobRunOut.seconds", "SagaOut.age_s", "SagaDetailOut.age_s"}
    amount = openapi["components"]["schemas"]["LoanOut"]["properties"]["principal"]
    assert amount["type"] == "string" and amount["pattern"] == schemas.AMOUNT_PATTERN


def same_through(model: type[BaseModel], body: dict[str, Any]) -> dict[str, Any]:
    """What FastAPI sends for ``body`` under ``model``."""
    out: dict[str, Any] = model.model_validate(body).model_dump(
        mode="json", by_alias=True, exclude_unset=True)
    return out


def installment(number: int, status: str, paid: str = "0.00") -> Installment:
    return Installment(
        number=number, due_date=date(2026, 3, number), principal_due=Decimal("400.00"),
        interest_due=Decimal("50.00"), fees_due=Decimal("5.00"), penalties_due=Decimal("0.00"),
        principal_paid=Decimal(paid), interest_paid=Decimal("0.00"), fees_paid=Decimal("0.00"),
        penalties_paid=Decimal("0.00"), status=status,
        paid_on=date(2026, 3, 1) if status == "paid" else None)


def test_a_loan_and_its_schedule_pass_unchanged() -> None:
    loan = Loan(id="loan-1", client_id="cli-1", partner_id="p-1", product_id="prd-1",
                product_version=2, principal=Decimal("1200.00"), term=3,
                status=LoanStatus.ACTIVE, submitted_by="maker", decided_by="checker",
                disbursed_on=date(2026, 2, 1), days_in_arrears=4, arrears_bucket="1-30")
    items = [installment(1, "paid", "400.00"), installment(2, "overdue"),
             installment(3, "pending")]
    body = loan_json(loan, items)
    assert same_through(schemas.LoanOut, body) == body
    preview = {**loan_json(loan, items, with_schedule=True), "schedule_note": "preview"}
    assert same_through(schemas.LoanApplicationOut, preview) == preview
    assert same_through(schemas.ApprovedLoanOut, {**body, "saga_id": "s-1"})["saga_id"] == "s-1"


def test_a_shape_with_a_field_the_model_does_not_know_is_refused() -> None:
    loan = Loan(id="loan-1", client_id="cli-1", partner_id="p-1", product_id="prd-1",
                product_version=1, principal=Decimal("1200.00"), term=3,
                status=LoanStatus.SUBMITTED, submitted_by="maker")
    with pytest.raises(ValidationError):
        schemas.LoanOut.model_validate({**loan_json(loan, []), "surprise": 1})
    with pytest.raises(ValidationError):   # money as a number never leaves
        schemas.LoanOut.model_validate({**loan_json(loan, []), "principal": 1200})


SNAPSHOT = {
    "business_date": date(2026, 3, 20), "loans_active": 5,
    "outstanding_principal": Decimal("5100.00"), "par1_principal": Decimal("3300.00"),
    "par30_principal": Decimal("2400.00"), "par90_principal": Decimal("1200.00"),
    "buckets": {"current": {"loans": 2, "principal": "1800.00"},
                "90+": {"loans": 1, "principal": "1200.00"}},
}


def run(status: str, stats: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": "run-1", "business_date": date(2026, 3, 20), "status": status,
            "requested_by": "op", "step": "penalties_applied" if status == "running" else None,
            "attempts": 1, "error": None, "started_at": AT, "heartbeat_at": AT,
            "finished_at": None if status == "running" else AT, "stats": stats}


def test_close_of_business_runs_pass_unchanged_with_only_the_steps_done() -> None:
    running = run_json(run("running", {"installments_marked_overdue": 7}))
    assert same_through(schemas.CobRunOut, running) == running
    assert running["counts"] == {"installments_marked_overdue": 7}
    done = run_json(run("completed", {"installments_marked_overdue": 7, "penalties_applied": 7,
                                      "loans_reaged": 3, "repayment_due_events": 1,
                                      "in_arrears_events": 3, "seconds": 25.5}), SNAPSHOT)
    assert same_through(schemas.CobRunOut, done) == done
    assert done["portfolio"]["arrears_buckets"]["1-30"] == {"loans": 0, "principal": "0.00"}
    history = {"items": [snapshot_json(SNAPSHOT)]}
    assert same_through(schemas.SnapshotPage, history) == history


def test_an_installment_due_passes_unchanged() -> None:
    row = {"loan_id": "loan-1", "client_id": "cli-1", "partner_id": "p-1", "number": 2,
           "due_date": date(2026, 2, 5), "total": Decimal("312.00"), "paid": Decimal("100.00"),
           "days_in_arrears": 3, "days_late": 3, "reference": "L000000150"}
    item = item_json(row)
    assert (item["days_late"], item["reference"]) == (3, "L000000150")
    page = {"date": "2026-02-05", "currency": "MAD", "items": [item], "next_cursor": None,
            "totals": {"count": 1, "amount_due": "212.00", "paid": "100.00", "total": "312.00",
                       "by_status": {"due": 0, "partly_paid": 1, "paid": 0}}}
    assert same_through(schemas.DuePage, page) == page
