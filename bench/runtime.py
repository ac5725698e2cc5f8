"""``python -m bench.runtime``: the platform's hot paths in one process, per interpreter.

What a service does for one record or one request once the network and the database
are taken away: envelope encode and decode (``shared.envelope``), the pydantic models
of a repayment and of a loan application, a request through a FastAPI app composed as
``shared.app.create_app`` composes one (error handlers, audit and observe middleware,
the OpenTelemetry instrumentation; routing, header and body validation, the response
model), the allocation of a repayment and a loan's schedule (``services.loans.domain``)
and money formatting (``shared.money``). No route touches PostgreSQL or Kafka: the two
routes of this module stand in for the loans application route and the payments
provider-callback route, and do the work those do before and after their database
transaction.

``run``       measure in this interpreter, print µs and CPU µs per operation (or JSON);
``compare``   run ``run`` under several interpreters interleaved (A B C A B C …) for a
              number of rounds and print medians and ratios to the first interpreter;
``--callgrind`` with ``compare``: also count instructions per operation under
              ``valgrind --tool=callgrind`` (repeatable on a loaded machine, unlike
              time): one process per interpreter, a counter dump between operations.

Examples::

    .venv/bin/python -m bench.runtime run
    .venv/bin/python -m bench.runtime compare --rounds 7 \\
        --python 3.11=.venv/bin/python --python 3.12=/tmp/py312/bin/python \\
        --python 3.13=/tmp/py313/bin/python --callgrind
"""

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, MutableMapping
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

Op = Callable[[], object]
"""One operation: a call that does the work once (async work runs inside it)."""


# -- the workload ----------------------------------------------------------------------


def _operations() -> dict[str, Op]:
    """Every operation, built once (imports and sample data outside the timing).

    The module has no ``from __future__ import annotations``: FastAPI reads the routes'
    annotations, and the types they name are imported here, not at module level.
    """
    import orjson
    from fastapi import FastAPI, Header, Request
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from services.loans.api.schemas import LoanApplicationIn, LoanApplicationOut
    from services.loans.domain.allocation import InstallmentDue, decide_repayment
    from services.loans.domain.products import (
        Amortization,
        Fee,
        FeeKind,
        FeeTiming,
        Frequency,
        InterestMethod,
        ProductTerms,
    )
    from services.loans.domain.schedule import PlannedInstallment, build_schedule
    from services.payments.api.schemas import (
        CollectionCallbackOut,
        RepaymentAccepted,
        RepaymentRequest,
    )
    from services.payments.domain.webhooks import sign, verify
    from services.payments.handlers.collections import provider_reference
    from services.payments.providers.gsma import party
    from shared.app import ObserveMiddleware
    from shared.audit import AuditMiddleware
    from shared.contracts.payments import RepaymentReceived
    from shared.envelope import Envelope, envelope_for
    from shared.errors import InvalidInput
    from shared.http import install_error_handlers
    from shared.money import CURRENCIES, format_amount, parse_amount
    from shared.telemetry import setup_tracing

    # -- envelopes: what payments publishes for a repayment, and what loans reads
    event = RepaymentReceived(
        loan_id="LN-01J9Z3Q4W5E6R7T8Y9U0I1O2P3", payment_id="PAY-01J9Z3Q4W5E6R7T8Y9U0I1O2",
        amount=Decimal("1250.00"), payer_msisdn="+212612345678", provider="simmoney",
        external_ref="EXT-7f3a9c2e", received_at=dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC))
    wire = envelope_for(event, aggregate_id=event.loan_id,
                        correlation_id=str(uuid.uuid4()), causation_id=str(uuid.uuid4()),
                        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                        ).to_bytes()

    def envelope_encode() -> object:
        return envelope_for(event, aggregate_id=event.loan_id,
                            correlation_id="c0ffee00-0000-4000-8000-000000000001").to_bytes()

    def envelope_decode() -> object:
        return Envelope.from_bytes(wire).parse()

    # -- a repayment through the payments API models
    repayment_body = orjson.dumps({
        "loan_id": "LN-01J9Z3Q4W5E6R7T8Y9U0I1O2P3", "amount": "1250.00", "currency": "MAD",
        "payer_msisdn": "+212612345678", "external_ref": "EXT-7f3a9c2e",
        "provider_reference": "SIM-01J9Z3Q4W5E6R7T8", "provider": "simmoney"})

    def repayment_models() -> object:
        req = RepaymentRequest.model_validate_json(repayment_body)
        out = RepaymentAccepted(payment_id="PAY-" + req.external_ref, status="received")
        return out.model_dump_json()

    # -- a loan application: its model, its schedule preview, its answer's model
    terms = ProductTerms(
        interest_method=InterestMethod.DECLINING_BALANCE,
        amortization=Amortization.EQUAL_INSTALLMENTS, frequency=Frequency.MONTHLY,
        annual_rate=Decimal("0.24"), min_principal=Decimal("1000.00"),
        max_principal=Decimal("100000.00"), min_term=3, max_term=36,
        fees=(Fee(FeeKind.PERCENT_OF_PRINCIPAL, Decimal("0.01"), FeeTiming.AT_DISBURSEMENT),))
    application_body = orjson.dumps({
        "client_id": "CL-01J9Z3Q4W5E6R7T8Y9U0I1O2P3", "product_id": "micro-monthly",
        "principal": "15000.00", "term": 12, "purpose": "working_capital"})
    start = dt.date(2026, 12, 7)

    def schedule_of(principal: Decimal, term: int) -> list[PlannedInstallment]:
        return build_schedule(terms, principal, term, start)

    def application_answer(body: LoanApplicationIn) -> dict[str, Any]:
        """The answer's shape, as ``handlers.applications.submit`` returns it."""
        schedule = schedule_of(body.principal, body.term)
        zero = format_amount(Decimal(0))
        total = sum((i.principal + i.interest + i.fees for i in schedule), Decimal(0))
        return {
            "id": "LN-01J9Z3Q4W5E6R7T8Y9U0I1O2P3", "client_id": body.client_id,
            "partner_id": "P-CASA", "product_id": body.product_id, "product_version": 3,
            "status": "submitted", "principal": format_amount(body.principal),
            "term": body.term, "currency": "MAD", "submitted_by": "amina",
            "submitted_at": "2026-12-07T09:30:00+00:00", "decided_by": None,
            "decision_reason": None, "disbursed_on": None, "closed_on": None,
            "written_off_on": None,
            "outstanding": {"principal": zero, "interest": zero, "fees": zero,
                            "penalties": zero, "total": zero},
            "days_in_arrears": 0, "arrears_bucket": "current", "next_due": None,
            "allowed_actions": ["approve", "reject", "withdraw"],
            "reference": "L7K3M9Q2X4",
            "purpose": None if body.purpose is None else body.purpose.value,
            "schedule": [{
                "number": i.number, "due_date": i.due_date.isoformat(),
                "principal": format_amount(i.principal),
                "interest": format_amount(i.interest), "fees": format_amount(i.fees),
                "penalties": zero, "total": format_amount(i.principal + i.interest + i.fees),
                "paid": zero, "outstanding": format_amount(i.principal + i.interest + i.fees),
                "status": "pending", "paid_on": None} for i in schedule],
            "total_repayable": format_amount(total),
            "schedule_note": "a preview: due dates move with the disbursement date",
        }

    def application_models() -> object:
        body = LoanApplicationIn.model_validate_json(application_body)
        answer = LoanApplicationOut.model_validate(application_answer(body))
        return orjson.dumps(answer.model_dump(mode="json"))

    def loan_schedule() -> object:
        return schedule_of(Decimal("15000.00"), 12)

    # -- the allocation of a repayment over a 12-installment loan, one installment
    # overdue with a penalty, paying it and part of the next two
    owed = [InstallmentDue.from_planned(p) for p in schedule_of(Decimal("15000.00"), 12)]
    owed[0].penalties = Decimal("25.00")

    def allocate_repayment() -> object:
        return decide_repayment(owed, Decimal("3125.40"), terms.allocation_order,
                                as_of=dt.date(2027, 2, 10))

    # -- money in JSON: the amounts of a statement line, formatted and parsed back
    amounts = [Decimal("1250.00"), Decimal("0.10"), Decimal("15000"), Decimal("-3.5"),
               Decimal("987654.32"), Decimal("42.42"), Decimal("0"), Decimal("1234567.8")]
    texts = ["1250.00", "0.10", "15000", "-3.50", "987654.32", "42.42", "0.00", "1234567.8"]

    def money_json() -> object:
        out = orjson.dumps({f"a{k}": format_amount(v) for k, v in enumerate(amounts)})
        return out, [parse_amount(t) for t in texts]

    # -- requests through a FastAPI app composed like shared.app.create_app's
    setup_tracing("bench", None)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)

    @app.post("/v1/loans", status_code=201, response_model=LoanApplicationOut)
    async def apply_for_loan(
        body: LoanApplicationIn,
        idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    ) -> Any:
        return application_answer(body)

    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    callback_body = orjson.dumps({
        "transactionReference": "SIM-01J9Z3Q4W5E6R7T8", "amount": "1250.00",
        "currency": "MAD", "type": "merchantpay",
        "creditParty": [{"key": "accountid", "value": "L7K3M9Q2X4"}],
        "debitParty": [{"key": "msisdn", "value": "+212612345678"}]})

    @app.post("/v1/mobile-money/{provider}/callbacks", response_model=CollectionCallbackOut)
    async def provider_callback(provider: str, request: Request) -> Any:
        raw = await request.body()
        h = request.headers
        verify([secret], h.get("webhook-id"), h.get("webhook-timestamp"),
               h.get("webhook-signature"), raw, time.time())
        body = orjson.loads(raw)
        ref = provider_reference(body.get("transactionReference"), field="transactionReference")
        amount = parse_amount(body.get("amount"))
        if body.get("currency") not in CURRENCIES or not party(body.get("creditParty"),
                                                               "accountid"):
            raise InvalidInput("not a collection", field="body")
        party(body.get("debitParty"), "msisdn")
        return CollectionCallbackOut(status="accepted",
                                     payment_id=f"PAY-{ref}-{format_amount(amount)}")

    app.add_middleware(AuditMiddleware)
    app.add_middleware(ObserveMiddleware, service="bench")
    FastAPIInstrumentor.instrument_app(app, excluded_urls="health/.*,metrics",
                                       exclude_spans=["receive", "send"])

    runner = asyncio.Runner()

    def asgi(method: str, path: str, headers: list[tuple[bytes, bytes]],
             body: bytes, expect: int) -> Op:
        async def call() -> None:
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                     "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
                     "query_string": b"", "root_path": "", "headers": headers,
                     "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8102)}
            sent: list[dict[str, Any]] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: MutableMapping[str, Any]) -> None:
                sent.append(dict(message))

            await app(scope, receive, send)
            if sent[0]["status"] != expect:
                raise AssertionError(f"{path}: {sent[0]['status']} {sent[1:]}")

        def once() -> object:
            return runner.run(call())

        return once

    def json_headers(body: bytes, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
        return [(b"host", b"127.0.0.1:8102"), (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()), *extra]

    webhook_ts = int(time.time())
    signature = sign(secret, "wh-1", webhook_ts, callback_body)
    asgi_loan_application = asgi("POST", "/v1/loans", json_headers(
        application_body, (b"idempotency-key", b"7d3c0a52-5b7e-4f61-9a55-0f1d1e2a3b4c")),
        application_body, 201)
    asgi_repayment_callback = asgi("POST", "/v1/mobile-money/simmoney/callbacks", json_headers(
        callback_body, (b"webhook-id", b"wh-1"), (b"webhook-timestamp", str(webhook_ts).encode()),
        (b"webhook-signature", signature.encode())), callback_body, 200)

    return {
        "envelope_encode": envelope_encode,
        "envelope_decode": envelope_decode,
        "repayment_models": repayment_models,
        "application_models": application_models,
        "asgi_repayment_callback": asgi_repayment_callback,
        "asgi_loan_application": asgi_loan_application,
        "allocate_repayment": allocate_repayment,
        "loan_schedule": loan_schedule,
        "money_json": money_json,
    }


OPS_HELP = """\
envelope_encode          RepaymentReceived -> Envelope -> bytes (shared.envelope)
envelope_decode          bytes -> Envelope -> RepaymentReceived (validated twice)
repayment_models         RepaymentRequest from JSON bytes, RepaymentAccepted to JSON
application_models       LoanApplicationIn from JSON, 12-month schedule, LoanApplicationOut
asgi_repayment_callback  signed provider callback through the ASGI app (HMAC, body, model)
asgi_loan_application    POST /v1/loans through the ASGI app (application_models' work)
allocate_repayment       decide_repayment over 12 installments (services.loans.domain)
loan_schedule            build_schedule, 12 monthly installments, declining balance
money_json               8 amounts formatted to JSON and 8 parsed (shared.money)"""


# -- measuring in this interpreter -------------------------------------------------------


def _batch(op: Op, n: int) -> tuple[float, float]:
    """Wall and CPU seconds for ``n`` calls of ``op``."""
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        op()
    return time.perf_counter() - wall0, time.process_time() - cpu0


def measure(op: Op, batch_s: float, batches: int) -> dict[str, float]:
    """µs per call (wall and CPU): the median of ``batches`` batches of about ``batch_s``."""
    n = 1
    while True:  # calibrate: the batch size that takes about batch_s
        wall, _ = _batch(op, n)
        if wall >= batch_s / 4:
            n = max(1, int(n * batch_s / wall))
            break
        n *= 4
    walls, cpus = [], []
    for _ in range(batches):
        wall, cpu = _batch(op, n)
        walls.append(wall / n * 1e6)
        cpus.append(cpu / n * 1e6)
    return {"us": statistics.median(walls), "cpu_us": statistics.median(cpus), "n": n}


def run(args: argparse.Namespace) -> int:
    ops = _operations()
    names = args.only or list(ops)
    unknown = [n for n in names if n not in ops]
    if unknown:
        print(f"unknown operation(s): {', '.join(unknown)}\n{OPS_HELP}", file=sys.stderr)
        return 2
    for op in ops.values():  # warm-up: every operation, so a counted run differs only by N
        for _ in range(args.warmup):
            op()
    if args.iterations is not None:  # a fixed workload, for instruction counting
        for name in names:
            os.getppid()  # the marker: callgrind dumps its counters before each call
            for _ in range(args.iterations):
                ops[name]()
        os.getppid()
        return 0
    python = sys.version.split()[0]
    measured = {name: measure(ops[name], args.batch_s, args.batches) for name in names}
    if args.json:
        print(json.dumps({"python": python, "ops": measured}))
    else:
        print(f"Python {python}")
        for name, m in measured.items():
            print(f"  {name:<26} {m['us']:9.1f} µs/op   {m['cpu_us']:9.1f} CPU µs/op")
    return 0


# -- comparing interpreters --------------------------------------------------------------


def _interpreters(specs: list[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not path:
            raise SystemExit(f"--python wants LABEL=PATH, got {spec!r}")
        out.append((label, path))
    return out


def _child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


MARKER = "getppid"
"""The libc function ``run --iterations`` calls between operations (``os.getppid``): under
``--dump-before=getppid`` callgrind writes its counters to a new file and zeroes them at
each call, so each operation's instructions land in a file of their own, counted in one
process after one start-up and one warm-up."""


def _instructions(python: str, names: list[str], n: int, warmup: int) -> dict[str, float]:
    """Instructions per operation of ``names`` in ``python``, counted by callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--dump-before={MARKER}",
             f"--callgrind-out-file={tmp}/cg.out", python, "-m", "bench.runtime", "run",
             "--warmup", str(warmup), "--iterations", str(n), "--only", *names],
            cwd=ROOT, env=_child_env(), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"callgrind run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        # cg.out.1: start-up and warm-up; cg.out.2 …: one operation each; cg.out: the exit
        dumps = sorted(Path(tmp).glob("cg.out.*"), key=lambda f: int(f.suffix[1:]))
        if len(dumps) != len(names) + 1:
            raise RuntimeError(f"callgrind wrote {len(dumps)} dumps for {len(names)} "
                               f"operations: something else called {MARKER}()")
        totals = []
        for dump in dumps[1:]:
            found = re.search(r"^summary:\s*(\d+)", dump.read_text(), re.MULTILINE)
            if found is None:
                raise RuntimeError(f"no summary line in {dump.name}")
            totals.append(int(found.group(1)))
    return {name: total / n for name, total in zip(names, totals, strict=True)}


def compare(args: argparse.Namespace) -> int:
    interpreters = _interpreters(args.python)
    samples: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in interpreters}
    versions: dict[str, str] = {}
    for r in range(args.rounds):
        for label, python in interpreters:  # interleaved: A B C A B C …
            cmd = [python, "-m", "bench.runtime", "run", "--json",
                   "--batch-s", str(args.batch_s), "--batches", str(args.batches)]
            if args.only:
                cmd += ["--only", *args.only]
            proc = subprocess.run(cmd, cwd=ROOT, env=_child_env(), capture_output=True,
                                  text=True, check=True)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            versions[label] = result["python"]
            samples[label].append(result["ops"])
            print(f"[runtime] round {r + 1}/{args.rounds} {label} done", file=sys.stderr)
    names = list(samples[interpreters[0][0]][0])
    medians = {label: {name: {k: statistics.median(s[name][k] for s in runs)
                              for k in ("us", "cpu_us")} for name in names}
               for label, runs in samples.items()}
    spread = {label: {name: (min(s[name]["cpu_us"] for s in runs),
                             max(s[name]["cpu_us"] for s in runs)) for name in names}
              for label, runs in samples.items()}
    instructions = None
    if args.callgrind:
        instructions = {}
        for label, python in interpreters:
            print(f"[runtime] counting instructions under {label}", file=sys.stderr)
            instructions[label] = _instructions(python, names, args.callgrind_n, args.warmup)
    first = interpreters[0][0]
    labels = [label for label, _ in interpreters]
    print(f"{args.rounds} rounds, interleaved; medians of the rounds' medians; "
          f"ratio = CPU µs / {first}'s (below 1: faster)")
    print("interpreters: " + ", ".join(f"{lb} = Python {versions[lb]}" for lb in labels))
    head = f"{'operation':<26}" + "".join(
        f"{lb + ' µs':>11}{lb + ' CPU µs':>14}" + (f"{'ratio':>7}" if lb != first else "")
        for lb in labels)
    print(head)
    for name in names:
        row = f"{name:<26}"
        for lb in labels:
            m = medians[lb][name]
            row += f"{m['us']:11.1f}{m['cpu_us']:14.1f}"
            if lb != first:
                row += f"{m['cpu_us'] / medians[first][name]['cpu_us']:7.2f}"
        print(row)
    print("CPU µs per op, lowest and highest of the rounds:")
    for name in names:
        print(f"  {name:<26}" + "".join(
            f"  {lb} {spread[lb][name][0]:.1f} to {spread[lb][name][1]:.1f}" for lb in labels))
    if instructions is not None:
        print(f"instructions per op (callgrind, after a warm-up of {args.warmup} of each; "
              f"{args.callgrind_n} counted; ratio to {first}):")
        print(f"{'operation':<26}" + "".join(
            f"{lb:>12}" + (f"{'ratio':>7}" if lb != first else "") for lb in labels))
        for name in names:
            row = f"{name:<26}"
            for lb in labels:
                row += f"{instructions[lb][name]:12,.0f}"
                if lb != first:
                    row += f"{instructions[lb][name] / instructions[first][name]:7.2f}"
            print(row)
    if args.out:
        Path(args.out).write_text(json.dumps({
            "versions": versions, "rounds": args.rounds, "medians": medians,
            "samples": samples, "instructions": instructions}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="operations:\n" + OPS_HELP)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("run", "compare"):
        s = sub.add_parser(name, formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog="operations:\n" + OPS_HELP)
        s.add_argument("--only", nargs="+", metavar="OP", help="these operations only")
        s.add_argument("--batch-s", type=float, default=0.05,
                       help="seconds per timed batch (default 0.05)")
        s.add_argument("--batches", type=int, default=7,
                       help="timed batches per operation; the median counts (default 7)")
        s.add_argument("--warmup", type=int, default=200,
                       help="calls of every operation before any timing (default 200)")
    r = sub.choices["run"]
    r.add_argument("--json", action="store_true", help="one JSON line on stdout")
    r.add_argument("--iterations", type=int, default=None,
                   help="no timing: the warm-up, then this many calls of each op (callgrind)")
    c = sub.choices["compare"]
    c.add_argument("--python", action="append", required=True, metavar="LABEL=PATH",
                   help="an interpreter with the locked dependencies; the first is the base")
    c.add_argument("--rounds", type=int, default=7)
    c.add_argument("--callgrind", action="store_true",
                   help="also count instructions per operation with valgrind's callgrind")
    c.add_argument("--callgrind-n", type=int, default=300,
                   help="calls of each operation counted (default 300)")
    c.add_argument("--out", help="write the samples and medians as JSON to this file")
    args = p.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = run if args.command == "run" else compare
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())

