"""The console's fake services answer in the real services' shapes.

Each service's OpenAPI document is built in-process (its ``build_spec`` and
``shared.app.create_app``, no server, no database). Every route of the fake
(``tests/console/fake_platform.py``) must be an operation of the real service with
the same success status, and every answer it gives — filled with records in the
real shapes, and its errors — must validate against that operation's declared
response schema.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from shared.app import create_app
from shared.auth import ROLE_SCOPES
from tests.console import fake_loans
from tests.console.fake_platform import State, build_service
from tests.identity import mint_token

SERVICES = ("clients", "loans", "payments", "notifications", "savings")
UNUSED_DB = "postgresql://unused:unused@127.0.0.1:1/unused"
T0 = "2026-11-29T09:00:00+00:00"


@pytest.fixture(scope="module")
def documents() -> Iterator[dict[str, dict[str, Any]]]:
    with pytest.MonkeyPatch.context() as env:
        for name in SERVICES:
            env.setenv(f"NORIA_{name.upper()}_DATABASE_URL", UNUSED_DB)
        docs = {}
        for name in SERVICES:
            bootstrap = importlib.import_module(f"services.{name}.bootstrap")
            docs[name] = create_app(bootstrap.build_spec()).openapi()
    yield docs


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    """The operation ``path`` (a template or a concrete path) names; literal
    segments win over parameters (``/v1/sagas/stuck`` before ``/v1/sagas/{id}``)."""
    found: list[tuple[int, dict[str, Any]]] = []
    for real, ops in doc["paths"].items():
        if method.lower() not in ops:
            continue
        if _template(real) == _template(path) or matches(real, path):
            found.append((real.count("{"), ops[method.lower()]))
    return min(found, key=lambda f: f[0])[1] if found else None


def fake_operations(name: str) -> list[tuple[str, str, dict[str, Any]]]:
    doc = build_service(name, State()).openapi()
    return [(method, path, op) for path, ops in doc["paths"].items()
            for method, op in ops.items()]


def disagreements(doc: dict[str, Any], method: str, path: str,
                  resp: httpx.Response) -> list[str]:
    """How the fake's answer differs from what the real operation declares."""
    where = f"{method} {path} -> {resp.status_code}"
    op = operation(doc, method, path)
    if op is None:
        return [f"{where}: no such operation in the real service"]
    declared = op["responses"].get(str(resp.status_code))
    if declared is None:
        return [f"{where}: a status the real operation does not declare"]
    media = resp.headers["content-type"].split(";")[0]
    content = declared.get("content") or {}
    if media not in content:
        return [f"{where}: {media}, where the real operation declares {list(content)}"]
    schema = {**content[media]["schema"], "components": doc["components"]}
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(resp.json()),
                    key=lambda e: list(e.absolute_path))
    return [f"{where} at {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:200]}"
            for e in errors]


@pytest.mark.parametrize("name", SERVICES)
def test_every_fake_route_is_an_operation_of_the_real_service(
        name: str, documents: dict[str, dict[str, Any]]) -> None:
    for method, path, fake in fake_operations(name):
        real = operation(documents[name], method, path)
        assert real is not None, f"{name}: {method.upper()} {path} is not a real operation"
        fake_ok = {c for c in fake["responses"] if c.startswith("2")}
        real_ok = {c for c in real["responses"] if c.startswith("2")}
        assert fake_ok <= real_ok, (name, method, path, fake_ok, real_ok)


# -- records in the real shapes, as a test would arrange them -------------------------

OUTSTANDING = {"principal": "5000.00", "interest": "0.00", "fees": "0.00",
               "penalties": "0.00", "total": "5000.00"}


def client(client_id: str, onboarded_by: str = "agent") -> dict[str, Any]:
    return {"id": client_id, "partner_id": "p-atlas", "full_name": "Youssef Benali",
            "national_id": "BK778899", "phone": "+212612345678", "date_of_birth": "1990-02-01",
            "language": "ar", "sms_consent": True, "region": "Souss-Massa", "address": None,
            "kyc_status": "pending", "kyc_reason": None, "kyc_decided_by": None,
            "kyc_decided_at": None, "blocked": False, "block_reason": None,
            "onboarded_by": onboarded_by, "office_id": "head", "office_path": "head",
            "officer_id": None, "created_at": T0, "updated_at": T0}


def loan(loan_id: str, client_id: str, status: str = "submitted") -> dict[str, Any]:
    return {"id": loan_id, "client_id": client_id, "partner_id": "p-atlas",
            "product_id": "P-weekly", "product_version": 1, "status": status,
            "principal": "5000.00", "term": 12, "currency": "MAD", "submitted_by": "agent",
            "decided_by": None, "decision_reason": None, "disbursed_on": None,
            "closed_on": None, "written_off_on": None, "outstanding": OUTSTANDING,
            "days_in_arrears": 0, "arrears_bucket": "current", "next_due": None,
            "allowed_actions": ["approve", "reject"], "submitted_at": T0}


def installment(number: int) -> dict[str, Any]:
    return {"number": number, "due_date": f"2026-12-0{number}", "principal": "625.00",
            "interest": "10.00", "fees": "0.00", "penalties": "0.00", "total": "635.00",
            "paid": "0.00", "outstanding": "635.00", "status": "pending", "paid_on": None}


SAGA = {"id": "S-1", "type": "disbursement", "loan_id": "L-1", "state": "completed",
        "current_step": "done", "deadline": None, "compensating": False, "failed": False,
        "attempts": 1, "data": {"client_id": "C-1", "partner_id": "p-atlas",
                                "amount": "5000.00", "msisdn": "+212612345678"},
        "created_at": T0, "updated_at": T0,
        "timeline": [{"at": T0, "event": "DisbursementCompleted", "from_state": "disbursing",
                      "to_state": "completed", "detail": ""}]}
PAR = {"par1": {"principal": "0.00", "ratio": "0.0000"},
       "par30": {"principal": "0.00", "ratio": "0.0000"},
       "par90": {"principal": "0.00", "ratio": "0.0000"}}
BUCKETS = {b: {"loans": 0, "principal": "0.00"}
           for b in ("current", "1-30", "31-60", "61-90", "90+")}
PORTFOLIO = {"currency": "MAD", "as_of_business_date": "2026-11-28", "loans_active": 1,
             "outstanding_principal": "5000.00", "par": PAR, "arrears_buckets": BUCKETS,
             "loans_by_status": {"active": 1}, "last_snapshot": None}
DUE = {"date": "2026-11-29", "currency": "MAD", "items": [
    {"loan_id": "L-1", "client_id": "C-1", "partner_id": "p-atlas", "installment": 1,
     "due_date": "2026-11-29", "total": "635.00", "paid": "0.00", "amount_due": "635.00",
     "status": "due", "days_in_arrears": 0}],
    "totals": {"count": 1, "amount_due": "635.00", "paid": "0.00", "total": "635.00",
               "by_status": {"due": 1, "partly_paid": 0, "paid": 0}}, "next_cursor": None}
DEAD_LETTER = {"id": 7, "consumer": "payments", "topic": "payments.commands", "partition": 0,
               "offset": 1, "key": "k", "message_type": "DisburseLoan",
               "reason": "handler_failed", "error": "ValueError: boom", "created_at": T0,
               "replayed_at": None, "replay_count": 0, "value_preview": "{}"}
REPLAY = {"id": 1, "dead_letter_id": 7, "consumer": "payments", "topic": "payments.commands",
          "message_type": "DisburseLoan", "replayed_by": "amina", "replayed_at": T0,
          "outcome": "applied", "detail": None}
PAYMENT = {"id": "P-1", "kind": "collection", "status": "completed", "amount": "635.00",
           "currency": "MAD", "loan_id": "L-1", "partner_id": "p-atlas",
           "msisdn": "+212612345678", "provider": "sim", "provider_reference": "SIM-1",
           "payment_id": "P-1", "saga_id": None, "reason": None, "source": "wallet",
           "at": T0, "completed_at": T0}
PAYMENTS_DAY = {"date": "2026-11-29", "timezone": "Africa/Casablanca", "kind": None,
                "status": None, "items": [PAYMENT],
                "totals": {"collection": {"count": 1, "amount": "635.00"}},
                "next_cursor": None}
HELD = {"payment_id": "P-2", "loan_id": "L-1", "partner_id": "p-atlas", "provider": "sim",
        "payment_status": "rejected", "rejection_reason": "loan closed", "received_at": T0,
        "amount": "100.00", "msisdn": "+212612345678", "last_payout_id": None,
        "failure_reason": None, "failed_at": None, "retries": 0}
STATEMENT = {"account": {"id": "portfolio:L-1", "kind": "loan_portfolio",
                         "name": "Portfolio L-1", "normal_side": "debit", "non_negative": True,
                         "debits": "5000.00", "credits": "0.00", "balance": "5000.00"},
             "lines": [{"line_id": 1, "transfer_id": "T-1", "kind": "disbursement",
                        "loan_id": "L-1", "side": "debit", "amount": "5000.00",
                        "balance_after": "5000.00", "memo": "payout", "posted_at": T0}],
             "next_before": None}
RECONCILIATION = {"provider": "sim", "date": "2026-11-28",
                  "matched": [{"reference": "R1", "kind": "disbursement", "amount": "100.00"}],
                  "amount_mismatch": [], "ours_only": [], "theirs_only": [],
                  "summary": {"matched": 1, "amount_mismatch": 0, "ours_only": 0,
                              "theirs_only": 0, "reconciled": True}}
MESSAGE = {"id": "M-1", "client_id": "C-1", "loan_id": "L-1", "phone": "+212612345678",
           "language": "fr", "template": "loan_disbursed", "template_version": 1,
           "text": "Votre prêt a été versé.", "encoding": "GSM-7", "segments": 1,
           "status": "delivered", "permanent": None, "reason": None, "provider": "smpp",
           "attempts": 1, "urgent": False, "not_before": T0, "created_at": T0,
           "resend_of": None}
SMS_STATS = {"by_provider_language": [
    {"provider": "smpp", "language": "fr", "sent": 10, "delivered": 9, "failed": 1,
     "expired": 0, "queued": 0, "suppressed": 2, "segments": 12, "encodings": {"GSM-7": 12}}],
    "opt_outs": {"mo_stop": 3}, "languages": ["fr", "ar"], "held_triggers": 0}
CREDIT = {"client_id": "C-1", "currency": "MAD", "credit_limit": "5000.00", "cycle": 1,
          "reserved": "0.00", "outstanding": "0.00", "exposure": "0.00",
          "available": "5000.00", "loans": []}


PAYOUT = {"payout_id": "PO-1", "kind": "disbursement", "saga_id": "S-1", "loan_id": "L-1",
          "msisdn": "+212612345678", "amount": "5000.00", "currency": "MAD",
          "provider": "sim", "status": "in_doubt", "provider_reference": None,
          "failure_reason": None, "resolved_by": None, "deadline": T0, "created_at": T0,
          "completed_at": None, "payment_id": None, "in_doubt_since": T0,
          "account_id": None, "queries": 3, "reason": "no answer by the deadline"}
ALERT = {"id": "A-1", "provider": "sim", "business_date": "2026-11-28",
         "mismatch": "ours_only", "reference": "R9", "kind": "disbursement", "loan_id": "L-1",
         "ours_amount": "100.00", "theirs_amount": None, "status": "open", "raised_at": T0,
         "resolved_at": None, "resolved_by": None, "resolution_note": None}
GL = [{"code": "2100", "name_fr": "Portefeuille", "name_ar": "", "type": "asset",
       "parent_code": None, "regulator_code": "21", "debits": "5000.00", "credits": "0.00",
       "balance": "5000.00", "office_id": None},
      {"code": "1140", "name_fr": "Flottant", "name_ar": "", "type": "asset",
       "parent_code": None, "regulator_code": "11", "debits": "0.00", "credits": "5000.00",
       "balance": "-5000.00", "office_id": None}]
GL_LINE = {"line_id": 1, "account_id": "portfolio:L-1", "side": "debit", "amount": "5000.00",
           "office_id": None, "transfer_id": "T-1", "kind": "disbursement", "loan_id": "L-1",
           "memo": "payout", "business_date": "2026-11-28", "posted_at": T0}
JOURNAL = {"id": "J-1", "business_date": "2026-11-28", "reason": "rent", "attachments": [],
           "lines": [{"gl_code": "6750", "side": "debit", "amount": "1200.00"},
                     {"gl_code": "1140", "side": "credit", "amount": "1200.00"}],
           "office_id": None, "amount": "1200.00", "status": "proposed", "proposed_by": "agent",
           "proposed_at": T0, "decided_by": None, "decided_at": None, "decision_note": None,
           "transfer_id": None}
SAVINGS_ACCOUNT = {"id": "a-1", "payment_reference": "SAV-a-1", "client_id": "C-1",
                   "partner_id": "p-atlas", "office_id": "head", "office_path": "head",
                   "product_id": "SP-1", "product_version": 1, "kind": "voluntary",
                   "status": "active", "currency": "MAD", "ledger_balance": "500.00",
                   "held_balance": "0.00", "available_balance": "500.00",
                   "opening_deposit": "500.00", "blocked": False, "block_reason": None,
                   "opened_by": "agent", "approved_by": None, "linked_loan_id": None,
                   "linked_loan_closed": False, "maturity_date": None,
                   "maturity_instruction": None, "last_client_transaction_on": None,
                   "opened_on": "2026-11-01", "closed_on": None}
SAVINGS_LINE = {"id": 1, "kind": "deposit", "amount": "500.00", "value_date": "2026-11-01",
                "channel": "opening", "reference": None, "balance": "500.00"}
WITHDRAWAL = {"id": "w-1", "account_id": "a-1", "client_id": "C-1", "amount": "100.00",
              "fee": "0.00", "msisdn": "+212612345678", "status": "in_doubt",
              "requested_by": "agent", "requested_on": "2026-11-28", "reason": None,
              "provider_reference": None, "created_at": T0, "updated_at": T0}
SAVINGS_PRODUCT = {"id": "SP-1", "version": 1, "name": "Épargne libre", "currency": "MAD",
                   "is_current": True, "created_by": "agent", "created_at": T0,
                   "terms": {"kind": "voluntary", "annual_rate": "0.03"}}
OFFICE = {"id": "head", "kind": "head_office", "name": "Siège", "parent_id": None,
          "path": "head", "status": "open", "opened_by": "system", "created_at": T0,
          "updated_at": T0}
STAFF = {"id": "st-1", "full_name": "Samir Alami", "role": "loan_officer",
         "office_id": "head", "office_path": "head", "active": True, "created_by": "agent",
         "created_at": T0, "updated_at": T0}


def org_request(request_id: str, kind: str) -> dict[str, Any]:
    return {"id": request_id, "kind": kind, "status": "pending",
            "client_id": "C-1" if kind == "transfer" else None, "from_office_id": "head",
            "from_office_path": "head", "to_office_id": "b-1", "to_office_path": "head/b-1",
            "from_officer_id": "st-1", "to_officer_id": "st-2", "reason": "moved",
            "requested_by": "agent", "requested_at": T0, "decided_by": None,
            "decided_at": None, "decision_reason": None, "moved_clients": 0,
            "moved_groups": 0}


def arranged() -> State:
    state = State()
    state.clients["C-1"] = client("C-1")
    state.credit["C-1"] = CREDIT
    for loan_id in ("L-1", "L-2", "L-3"):
        state.loans[loan_id] = loan(loan_id, "C-1")
        state.schedules[loan_id] = [installment(k) for k in range(1, 5)]
    state.sagas["S-1"] = SAGA
    state.portfolio = PORTFOLIO
    state.installments_due = DUE
    state.payments_day = PAYMENTS_DAY
    state.held_refunds = [HELD, {**HELD, "payment_id": "P-3"}]
    state.statements["portfolio:L-1"] = STATEMENT
    state.reconciliation[("sim", "2026-11-28")] = RECONCILIATION
    state.messages.append(MESSAGE)
    state.sms_stats = SMS_STATS
    ops = state.ops
    ops.payouts["PO-1"] = dict(PAYOUT)
    ops.payouts["PO-2"] = {**PAYOUT, "payout_id": "PO-2", "saga_id": "S-2"}
    ops.alerts.append(dict(ALERT))
    ops.gl.extend(GL)
    ops.gl_lines["2100"] = [GL_LINE, {**GL_LINE, "line_id": 2}]
    ops.journals.extend([dict(JOURNAL), {**JOURNAL, "id": "J-2"}])
    ops.savings_accounts["a-1"] = SAVINGS_ACCOUNT
    ops.savings_lines["a-1"] = [SAVINGS_LINE]
    ops.savings_withdrawals.append(WITHDRAWAL)
    ops.savings_products.append(SAVINGS_PRODUCT)
    ops.offices.append(OFFICE)
    ops.staff.append(STAFF)
    ops.requests.extend([org_request("T-1", "transfer"), org_request("T-2", "transfer"),
                         org_request("R-1", "reassignment"),
                         org_request("R-2", "reassignment")])
    for name in SERVICES:
        state.dead_letters[name] = [dict(DEAD_LETTER), {**DEAD_LETTER, "id": 8, "offset": 2}]
        state.replays[name] = [REPLAY]
    fake_loans.arrange(state.servicing, state.loans, "L-3")
    return state


CALLS: dict[str, list[tuple[str, str, dict[str, Any] | None]]] = {
    "clients": [
        ("GET", "/v1/clients", None), ("GET", "/v1/clients?q=youssef", None),
        ("GET", "/v1/clients/C-1", None), ("GET", "/v1/clients/nobody", None),
        ("GET", "/v1/clients/C-1/credit", None), ("GET", "/v1/clients/nobody/credit", None),
        ("POST", "/v1/clients/C-1/kyc", {"decision": "verified", "reason": None}),
        ("GET", "/v1/offices?limit=1", None), ("GET", "/v1/staff?office_id=head", None),
        ("GET", "/v1/offices/head", None), ("GET", "/v1/offices/nowhere", None),
        ("GET", "/v1/staff/st-1", None), ("GET", "/v1/staff/nobody", None),
        ("GET", "/v1/transfers?status=pending&limit=1", None),
        ("POST", "/v1/transfers/T-1/approve", None),
        ("POST", "/v1/transfers/T-2/reject", {"reason": "wrong branch"}),
        ("POST", "/v1/transfers/T-2/reject", {"reason": "again"}),
        ("GET", "/v1/officer-reassignments?status=pending", None),
        ("POST", "/v1/officer-reassignments/R-1/approve", None),
        ("POST", "/v1/officer-reassignments/R-2/reject", {"reason": "no"}),
    ],
    "loans": [
        ("GET", "/v1/loans?limit=2", None), ("GET", "/v1/loans?status=submitted", None),
        ("GET", "/v1/loans/L-1", None), ("GET", "/v1/loans/nothing", None),
        ("GET", "/v1/loans/L-1/schedule", None),
        ("POST", "/v1/loans/L-1/approve", None), ("POST", "/v1/loans/L-1/approve", None),
        ("POST", "/v1/loans/L-2/reject", {"reason": "revenus insuffisants"}),
        ("GET", "/v1/installments/due?date=2026-11-29", None), ("GET", "/v1/portfolio", None),
        ("GET", "/v1/sagas", None), ("GET", "/v1/sagas/S-1", None),
        ("GET", "/v1/sagas/nothing", None), *fake_loans.CALLS,
    ],
    "payments": [
        ("GET", "/v1/payments?date=2026-11-29", None),
        ("GET", "/v1/payments?date=2026-11-29&kind=collection&limit=1", None),
        ("GET", "/v1/refunds/held", None), ("GET", "/v1/refunds/held?limit=1", None),
        ("GET", "/v1/refunds/held?limit=1&cursor=1", None),
        ("POST", "/v1/refunds/P-2/retry", {"note": "paid again"}),
        ("GET", "/v1/ledger/trial-balance", None),
        ("GET", "/v1/accounts/portfolio:L-1/statement", None),
        ("GET", "/v1/accounts/nothing/statement", None),
        ("GET", "/v1/reconciliation/sim/2026-11-28", None),
        ("GET", "/v1/reconciliation/nothing/2026-11-28", None),
        ("GET", "/v1/payouts/in-doubt?limit=1", None),
        ("GET", "/v1/payments/PO-1", None), ("GET", "/v1/payments/S-2", None),
        ("GET", "/v1/payments/nothing", None),
        ("POST", "/v1/payouts/PO-1/settlement",
         {"outcome": "completed", "evidence": "statement PDF", "provider_reference": "SIM-1"}),
        ("POST", "/v1/payouts/PO-1/settlement", {"outcome": "failed", "evidence": "again"}),
        ("POST", "/v1/payouts/PO-2/settlement", {"outcome": "completed", "evidence": "x"}),
        ("POST", "/v1/payouts/PO-1/settlement/approve", {"note": "checked"}),
        ("GET", "/v1/payouts/PO-1/audit", None), ("GET", "/v1/payouts/nothing/audit", None),
        ("POST", "/v1/refunds/P-2/retry/approve", {"note": "ok"}),
        ("GET", "/v1/reconciliation/alerts?provider=sim&status=open&limit=1", None),
        ("POST", "/v1/reconciliation/alerts/A-1/resolve", {"note": "credited by hand"}),
        ("POST", "/v1/reconciliation/alerts/A-1/resolve", {"note": "again"}),
        ("POST", "/v1/reconciliation/alerts/A-1/resolve", {"note": ""}),
        ("POST", "/v1/reconciliation/runs", {"provider": "sim", "date": "2026-11-28"}),
        ("GET", "/v1/statements/trial-balance?as_of=2026-11-28", None),
        ("GET", "/v1/statements/income?from=2026-11-01&to=2026-11-28", None),
        ("GET", "/v1/statements/balance-sheet?office_id=head", None),
        ("GET", "/v1/gl-accounts/2100/lines?limit=1", None),
        ("GET", "/v1/gl-accounts/2100/lines?limit=1&cursor=l:2", None),
        ("GET", "/v1/journals?status=proposed", None),
        ("GET", "/v1/journals?status=proposed&order=asc&limit=1", None),
        ("GET", "/v1/journals?order=desc&limit=1&cursor=1", None),
        ("POST", "/v1/journals/J-1/approve", {"note": "ok"}),
        ("POST", "/v1/journals/J-2/reject", None), ("POST", "/v1/journals/J-2/reject", None),
        ("GET", "/v1/periods", None), ("POST", "/v1/periods/2026-10/close", None),
        ("POST", "/v1/periods/2999-01/close", None),
        ("GET", "/v1/ledger/savings/a-1", None),
    ],
    "savings": [
        ("GET", "/v1/savings/accounts?client_id=C-1", None),
        ("GET", "/v1/savings/accounts/a-1", None), ("GET", "/v1/savings/accounts/SAV-A-1", None),
        ("GET", "/v1/savings/accounts/nothing", None),
        ("GET", "/v1/savings/accounts/a-1/statement?from=2026-11-01&to=2026-11-30", None),
        ("GET", "/v1/savings/accounts/a-1/withdrawals", None),
        ("GET", "/v1/savings/withdrawals?status=in_doubt", None),
        ("GET", "/v1/savings/products", None),
    ],
    "notifications": [
        ("GET", "/v1/messages", None), ("GET", "/v1/messages?loan_id=L-1", None),
        ("POST", "/v1/messages/M-1/resend", None), ("GET", "/v1/sms/stats", None),
    ],
}
PLATFORM_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/dead-letters", None), ("GET", "/v1/dead-letters?pending_only=false", None),
    ("GET", "/v1/dead-letters/replays", None), ("POST", "/v1/dead-letters/7/replay", None),
    ("POST", "/v1/dead-letters/999/replay", None), ("POST", "/v1/dead-letters/replay-all", None),
]


@pytest.mark.parametrize("name", SERVICES)
async def test_every_answer_of_the_fake_validates_against_the_real_document(
        name: str, documents: dict[str, dict[str, Any]]) -> None:
    doc = documents[name]
    token = mint_token(sub="amina", scopes=[*ROLE_SCOPES["operator"], "loans:approve"])
    app = build_service(name, arranged())
    called: list[str] = []
    found: list[str] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Idempotency-Key": "k-1"}) as api:
        for method, url, body in [*CALLS[name], *PLATFORM_CALLS]:
            resp = await api.request(method, url, json=body)
            path = url.split("?")[0]
            assert resp.status_code < 500, (method, url, resp.text)
            found += disagreements(doc, method, path, resp)
            called.append(f"{method.lower()} {path}")
        unauthenticated = await api.get(CALLS[name][0][1], headers={"Authorization": ""})
        assert unauthenticated.status_code == 401
        found += disagreements(doc, "GET", CALLS[name][0][1].split("?")[0], unauthenticated)
    assert found == [], "\n".join(found)
    unchecked = [f"{m} {p}" for m, p, _ in fake_operations(name) if p.startswith("/v1/")
                 and not any(matches(f"{m} {p}", c) for c in called)]
    assert unchecked == [], f"fake routes this test never calls: {unchecked}"


WRITES_AND_SCOPES = [
    ("POST", "/v1/payouts/PO-1/settlement",
     {"outcome": "failed", "evidence": "provider ops e-mail"}, "payouts:settle"),
    ("POST", "/v1/reconciliation/alerts/A-1/resolve", {"note": "credited by hand"},
     "reconciliation:resolve"),
]


@pytest.mark.parametrize(("method", "url", "body", "scope"), WRITES_AND_SCOPES)
async def test_the_fake_needs_the_scope_the_real_route_needs(
        method: str, url: str, body: dict[str, Any], scope: str,
        documents: dict[str, dict[str, Any]]) -> None:
    """Settling a payout needs ``payouts:settle`` and resolving an alert
    ``reconciliation:resolve``: an operator without it gets 403 and nothing changes."""
    state = arranged()
    app = build_service("payments", state)
    without = mint_token(sub="amina", scopes=[s for s in ROLE_SCOPES["operator"] if s != scope])
    holder = mint_token(sub="amina", scopes=[scope, "tenant:all"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://fake",
                                 headers={"Idempotency-Key": "k-1"}) as api:
        refused = await api.request(method, url, json=body,
                                    headers={"Authorization": f"Bearer {without}"})
        assert refused.status_code == 403, refused.text
        assert disagreements(documents["payments"], method, url, refused) == []
        assert not state.ops.proposals and state.ops.alerts[0]["status"] == "open"
        done = await api.request(method, url, json=body,
                                 headers={"Authorization": f"Bearer {holder}"})
        assert done.status_code in (200, 202), done.text


async def test_an_accounting_write_without_an_idempotency_key_is_refused_naming_it(
        documents: dict[str, dict[str, Any]]) -> None:
    state = arranged()
    token = mint_token(sub="amina", scopes=ROLE_SCOPES["operator"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_service(
            "payments", state)), base_url="http://fake",
            headers={"Authorization": f"Bearer {token}"}) as api:
        refused = await api.post("/v1/periods/2026-10/close")
        assert refused.status_code == 422 and "Idempotency-Key" in refused.text
        assert disagreements(documents["payments"], "POST", "/v1/periods/2026-10/close",
                             refused) == []
        assert state.ops.closed_periods == []
        first = await api.post("/v1/periods/2026-10/close", headers={"Idempotency-Key": "k"})
        again = await api.post("/v1/periods/2026-10/close", headers={"Idempotency-Key": "k"})
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json() and len(state.ops.closed_periods) == 1
