"""Loan servicing end to end (issue 14): early settlement, overpayment, write-off and
recovery by maker-checker, arrears refusing new credit, a mistyped short reference held.

Everything goes through the public APIs and the simulators, and waits for facts
(``eventually``), never for time. The scenarios share the package's platform and its one
business date: close of business only moves it forward, so the scenario that needs arrears
(a month ahead) comes before the one that needs a loan 180 days late; each computes its
dates from its own loan's schedule and the business date it finds.

Payments happen on today's local date (Africa/Casablanca): the simulators cannot move the
clock, so a loan paid "early" is paid on the day it was disbursed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.clock import business_date
from tests.e2e.bank import Bank, Borrower, eventually

pytestmark = pytest.mark.e2e
D = Decimal
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def today() -> date:
    """The local day a payment made now belongs to."""
    return business_date(datetime.now(UTC))


def local_day(instant: str) -> str:
    """The local day (Africa/Casablanca) an instant belongs to, as payments lists it."""
    return business_date(datetime.fromisoformat(instant)).isoformat()


def mad(amount: Decimal) -> str:
    """An amount as the French SMS writes it: ``3 000,00 MAD``."""
    whole, _, cents = f"{amount:.2f}".partition(".")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    return f"{' '.join(groups)},{cents} MAD"


async def disbursed(bank: Bank, who: Borrower, product: str, principal: str,
                    term: int) -> dict[str, Any]:
    loan_id = await bank.apply(who, product, principal, term)
    await bank.approve(loan_id)
    return await bank.wait_status(loan_id, "active")


async def schedule(bank: Bank, loan_id: str) -> list[dict[str, Any]]:
    body = await bank.call("GET", "loans", f"/v1/loans/{loan_id}/schedule",
                           headers=bank.maker)
    items: list[dict[str, Any]] = body["installments"]
    return items


async def payoff(bank: Bank, loan_id: str, day: date) -> dict[str, Any]:
    quote: dict[str, Any] = await bank.call(
        "GET", "loans", f"/v1/loans/{loan_id}/payoff", headers=bank.maker,
        params={"date": day.isoformat()})
    return quote


async def refunded(bank: Bank, phone: str, amount: Decimal) -> dict[str, Any]:
    """The wallet once its refunds reach ``amount`` (and never more, checked by caller)."""
    async def probe() -> dict[str, Any] | None:
        wallet = await bank.wallet(phone)
        assert D(wallet["refunds"]) <= amount, wallet
        return wallet if D(wallet["refunds"]) == amount else None

    return await eventually(probe, what=f"{amount} refunded to {phone}")


async def principal_down_to(bank: Bank, loan_id: str, remaining: Decimal) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        loan = await bank.loan(loan_id)
        return loan if D(loan["outstanding"]["principal"]) == remaining else None

    return await eventually(probe, what=f"{loan_id} principal down to {remaining}")


async def rejected_for(bank: Bank, who: Borrower, product: str, reason: str) -> str:
    """A new application by ``who``: approved by an operator, refused by clients."""
    loan_id = await bank.apply(who, product, "1000.00", 3)
    await bank.approve(loan_id)
    loan = await bank.wait_status(loan_id, "rejected", "active")
    assert loan["status"] == "rejected", loan
    assert reason in (loan["decision_reason"] or ""), loan
    return loan_id


def mistype(reference: str) -> str:
    """``reference`` with one data character changed to another (not one read the same,
    like ``O`` for ``0``): a single substitution always fails the mod-37 check."""
    i = 4
    original = reference[i]
    other = next(c for c in CROCKFORD if c != original)
    return reference[:i] + other + reference[i + 1:]


# -- 1. early settlement ------------------------------------------------------------------
@contextlib.asynccontextmanager
async def accounting_basis(bank: Bank, which: str) -> AsyncIterator[None]:
    """Payments on ``which`` basis for the test, as it was afterwards: the basis is the
    institution's setting and the database may hold another test's choice."""
    settings = await bank.call("GET", "payments", "/v1/accounting/settings",
                               headers=bank.maker)

    async def put(basis: str) -> None:
        await bank.call("PUT", "payments", "/v1/accounting/settings", headers={
            **bank.maker, "Idempotency-Key": str(uuid.uuid4())},
            json={"accounting_basis": basis, "non_accrual_days": settings["non_accrual_days"]})

    await put(which)
    try:
        yield
    finally:
        await put(settings["accounting_basis"])


async def test_early_settlement_at_the_payoff_waives_unearned_interest(bank: Bank) -> None:
    async with accounting_basis(bank, "cash"):
        await early_settlement_on_cash_basis(bank)


async def early_settlement_on_cash_basis(bank: Bank) -> None:
    nadia = await bank.onboard()
    product = await bank.product(annual_rate="0.24", max_term=12)
    loan = await disbursed(bank, nadia, product, "3000.00", 6)
    loan_id = loan["id"]
    installments = await schedule(bank, loan_id)
    scheduled_interest = sum((D(i["interest"]) for i in installments), D("0.00"))
    # Worked by hand: 3000 at 24 % a year, declining balance, 6 monthly installments:
    # r = 0.02, installment = 3000 * 0.02 / (1 - 1.02^-6) = 535.58; each month's interest
    # is 2 % of the balance left, rounded to the centime, the last installment takes the
    # rest of the principal:
    #   60.00 (3000.00), 50.49 (2524.42), 40.79 (2039.33), 30.89 (1544.54),
    #   20.80 (1039.85), 10.50 (525.07)  ->  213.47 of interest in all.
    assert scheduled_interest == D("213.47"), installments
    # On the day of disbursement nothing has been earned: the payoff is the principal
    # alone (no fee on this product), every scheduled dirham of interest is waived.
    day = today()
    quote = await payoff(bank, loan_id, day)
    assert D(quote["principal"]) == D("3000.00")
    assert D(quote["interest"]) == D("0.00")
    assert D(quote["total"]) == D("3000.00")
    assert D(quote["interest_waived"]) == scheduled_interest
    waived = D(quote["interest_waived"])

    await bank.repay_from_wallet(nadia, loan_id, quote["total"])
    closed = await bank.wait_status(loan_id, "closed")
    assert closed["outstanding"]["total"] == "0.00"
    assert closed["closed_on"] == day.isoformat()

    # The SMS tells the amount paid and the interest waived.
    [sms] = await bank.wait_sms(nadia.client_id, "loan_settled_early")
    assert mad(D(quote["total"])) in sms["text"], sms["text"]
    assert mad(waived) in sms["text"], sms["text"]

    # The ledger: the waiver is recorded against the loan. Under the default cash basis no
    # interest was ever recognised, so nothing is reversed: a memo (booked 0.00).
    async def waiver_recorded() -> dict[str, Any] | None:
        servicing = await bank.call("GET", "payments", f"/v1/loans/{loan_id}/servicing",
                                    headers=bank.maker)
        memos = [m for m in servicing["memos"] if m["kind"] == "interest_waived"]
        return servicing if memos else None

    servicing = await eventually(waiver_recorded, what="the interest waiver in the ledger")
    [memo] = [m for m in servicing["memos"] if m["kind"] == "interest_waived"]
    assert D(memo["amount"]) == waived, memo
    assert memo["basis"] == "cash" and D(memo["booked"]) == D("0.00"), memo
    assert D(servicing["portfolio_balance"]) == D("0.00")
    assert D(servicing["interest_receivable"]) == D("0.00")
    # Nothing came back to the wallet: the payment was exactly the payoff.
    wallet = await bank.wallet(nadia.phone)
    assert D(wallet["refunds"]) == D("0.00") and D(wallet["balance"]) == D("0.00")
    assert wallet["consistent"] is True
    await bank.check_invariants([loan_id])


async def test_early_settlement_under_accrual_reverses_the_accrued_interest(bank: Bank
                                                                           ) -> None:
    """Under accrual basis the interest recognised before the settlement and never to be
    earned is reversed in the ledger: Dr 7115 interest waived / Cr interest receivable."""
    settings = await bank.call("GET", "payments", "/v1/accounting/settings",
                               headers=bank.maker)

    async def basis(which: str) -> None:
        await bank.call("PUT", "payments", "/v1/accounting/settings", headers={
            **bank.maker, "Idempotency-Key": str(uuid.uuid4())},
            json={"accounting_basis": which,
                  "non_accrual_days": settings["non_accrual_days"]})

    await basis("accrual")
    try:
        amal = await bank.onboard()
        product = await bank.product(annual_rate="0.24", max_term=12)
        loan_id = (await disbursed(bank, amal, product, "3000.00", 6))["id"]
        day = today()
        # A day's interest recognised (the accrual route an operator or close of business
        # feeds): 3000 * 0.24 / 365 = 1.9726... -> 1.97 (actual/365).
        run = await bank.call(
            "POST", "payments", f"/v1/accruals/{day.isoformat()}", expect=(200, 201),
            headers={**bank.maker, "Idempotency-Key": str(uuid.uuid4())},
            json={"loans": [{"loan_id": loan_id, "principal": "3000.00",
                             "annual_rate": "0.24", "day_count": "actual/365",
                             "days_in_arrears": 0}]})
        assert run is not None
        quote = await payoff(bank, loan_id, day)
        assert D(quote["total"]) == D("3000.00") and D(quote["interest_waived"]) == \
            D("213.47")
        await bank.repay_from_wallet(amal, loan_id, quote["total"])
        await bank.wait_status(loan_id, "closed")

        async def waiver_booked() -> dict[str, Any] | None:
            servicing = await bank.call("GET", "payments", f"/v1/loans/{loan_id}/servicing",
                                        headers=bank.maker)
            memos = [m for m in servicing["memos"] if m["kind"] == "interest_waived"]
            return servicing if memos else None

        servicing = await eventually(waiver_booked, what="the interest waiver booked")
        [memo] = [m for m in servicing["memos"] if m["kind"] == "interest_waived"]
        assert memo["basis"] == "accrual", memo
        assert D(memo["amount"]) == D("213.47") and D(memo["booked"]) == D("1.97"), memo
        assert D(servicing["interest_receivable"]) == D("0.00"), servicing
        statement = await bank.call("GET", "payments",
                                    "/v1/accounts/income:interest_waived/statement",
                                    headers=bank.maker, params={"limit": 500})
        [line] = [x for x in statement["lines"] if x["loan_id"] == loan_id]
        assert line["side"] == "debit" and D(line["amount"]) == D("1.97"), line
        await bank.wait_sms(amal.client_id, "loan_settled_early")
        await bank.check_invariants([loan_id])
    finally:
        await basis(settings["accounting_basis"])


# -- 2. overpayment -------------------------------------------------------------------------
async def test_overpayment_closes_the_loan_and_refunds_only_the_excess(bank: Bank) -> None:
    youssef = await bank.onboard()
    product = await bank.product(annual_rate="0.24", max_term=12)
    loan = await disbursed(bank, youssef, product, "1000.00", 3)
    loan_id = loan["id"]
    quote = await payoff(bank, loan_id, today())
    excess = D("137.45")
    paid = D(quote["total"]) + excess
    await bank.cash_in(youssef.phone, str(excess))
    await bank.repay_from_wallet(youssef, loan_id, str(paid))

    closed = await bank.wait_status(loan_id, "closed")
    assert closed["outstanding"]["total"] == "0.00"
    wallet = await refunded(bank, youssef.phone, excess)
    # 1000 paid out + 137.45 cashed in - (payoff + 137.45) repaid + 137.45 refunded
    assert D(wallet["balance"]) == D("1000.00") + excess - paid + excess
    assert wallet["consistent"] is True
    [sms] = await bank.wait_sms(youssef.client_id, "refund_issued")
    assert mad(excess) in sms["text"], sms["text"]
    await bank.check_invariants([loan_id])
    # The refund is the excess and nothing more, however long one waits for another.
    assert D((await bank.wallet(youssef.phone))["refunds"]) == excess


# -- 5. a mistyped short reference -----------------------------------------------------------
async def _held_payment(bank: Bank) -> tuple[Borrower, dict[str, Any], dict[str, Any], str]:
    """A borrower pays the first installment under their loan's reference with one
    character mistyped: the payment held for review. (borrower, loan, held payment,
    typed reference)."""
    salma = await bank.onboard()
    product = await bank.product(annual_rate="0.24", max_term=12)
    loan = await disbursed(bank, salma, product, "2000.00", 4)
    reference = loan["reference"]
    assert reference and len(reference) == 10 and reference.startswith("L"), loan
    typed = mistype(reference)
    first = (await schedule(bank, loan["id"]))[0]
    await bank.repay_from_wallet(salma, typed, first["total"])

    async def held() -> dict[str, Any] | None:
        page = await bank.call("GET", "payments", "/v1/held-payments", headers=bank.maker,
                               params={"limit": 500})
        mine = [p for p in page["items"] if p["reference"].upper() == typed]
        return mine[0] if mine else None

    payment = await eventually(held, what=f"the payment to {typed} held for review")
    assert D(payment["amount"]) == D(first["total"])
    return salma, loan, payment, typed


async def test_mistyped_short_reference_is_held_for_review_not_refunded(bank: Bank) -> None:
    salma, loan, payment, _typed = await _held_payment(bank)
    loan_id = loan["id"]
    detail = await bank.call("GET", "payments", f"/v1/payments/{payment['payment_id']}",
                             headers=bank.maker)
    assert detail["status"] == "held", detail
    # the day's listing (payments' days are local days in Africa/Casablanca: see its README)
    listing = await bank.call("GET", "payments", "/v1/payments", headers=bank.maker,
                              params={"kind": "collection", "status": "held",
                                      "date": local_day(detail["received_at"]), "limit": 500})
    assert payment["payment_id"] in [p["id"] for p in listing["items"]], listing
    # Not refunded, not applied: the money waits in suspense for an operator.
    wallet = await bank.wallet(salma.phone)
    assert D(wallet["refunds"]) == D("0.00"), wallet
    assert D((await bank.loan(loan_id))["outstanding"]["principal"]) == D("2000.00")

    # The reference typed right (any case) reaches the loan.
    first = (await schedule(bank, loan_id))[0]
    await bank.repay_from_wallet(salma, loan["reference"].lower(), first["total"])
    await principal_down_to(bank, loan_id, D("2000.00") - D(first["principal"]))
    assert D((await bank.wallet(salma.phone))["refunds"]) == D("0.00")
    detail = await bank.call("GET", "payments", f"/v1/payments/{payment['payment_id']}",
                             headers=bank.maker)
    assert detail["status"] == "held", detail
    await bank.check_invariants([loan_id])


async def test_held_payment_matched_by_two_operators_is_applied_to_the_loan(bank: Bank
                                                                             ) -> None:
    salma, loan, payment, _typed = await _held_payment(bank)
    loan_id = loan["id"]
    pid = payment["payment_id"]
    proposal = await bank.call(
        "POST", "payments", f"/v1/payments/{pid}/match", headers={
            **bank.maker, "Idempotency-Key": str(uuid.uuid4())}, expect=202,
        json={"loan_id": loan_id, "note": "one character mistyped, payer's phone checked"})
    assert proposal["status"] == "proposed"
    # maker-checker: the proposer cannot approve it
    await bank.call("POST", "payments", f"/v1/payments/{pid}/match/approve", headers={
        **bank.maker, "Idempotency-Key": str(uuid.uuid4())}, expect=403, json={})
    await bank.call("POST", "payments", f"/v1/payments/{pid}/match/approve", headers={
        **bank.checker, "Idempotency-Key": str(uuid.uuid4())}, expect=202, json={})

    first = (await schedule(bank, loan_id))[0]
    await principal_down_to(bank, loan_id, D("2000.00") - D(first["principal"]))
    assert D((await bank.wallet(salma.phone))["refunds"]) == D("0.00")

    async def posted() -> dict[str, Any] | None:
        now = await bank.call("GET", "payments", f"/v1/payments/{pid}", headers=bank.maker)
        return now if now["status"] == "posted" else None

    await eventually(posted, what="the matched payment posted to the loan")
    await bank.check_invariants([loan_id])


# -- 4. arrears refuse new credit -------------------------------------------------------------
async def test_client_in_arrears_is_refused_new_credit_until_cured(bank: Bank) -> None:
    karima = await bank.onboard()
    product = await bank.product(annual_rate="0.24", max_term=12)
    loan = await disbursed(bank, karima, product, "2000.00", 3)
    loan_id = loan["id"]
    first = (await schedule(bank, loan_id))[0]
    due = date.fromisoformat(first["due_date"])
    late = due + timedelta(days=1)
    now = await bank.business_date()
    assert now <= late, f"the business date {now} is already past {late}: order of scenarios"

    # The night after the first due date: the installment is overdue, the loan in arrears.
    await bank.close_business(late)
    in_arrears = await bank.loan(loan_id)
    assert in_arrears["days_in_arrears"] == 1 and in_arrears["arrears_bucket"] == "1-30"

    async def clients_knows() -> dict[str, Any] | None:
        credit = await bank.credit(karima.client_id)
        return credit if [a["loan_id"] for a in credit["loans_in_arrears"]] == [loan_id] \
            else None

    await eventually(clients_knows, what="clients told of the arrears")
    refused = await rejected_for(bank, karima, product, "client_in_arrears")

    # The borrower pays what is overdue; the next night cures the loan.
    overdue = next(i for i in await schedule(bank, loan_id) if i["number"] == 1)
    await bank.repay_from_wallet(karima, loan_id, str(D(overdue["total"]) - D(overdue["paid"])))
    await principal_down_to(bank, loan_id, D("2000.00") - D(first["principal"]))
    await bank.close_business(late + timedelta(days=1))
    assert (await bank.loan(loan_id))["days_in_arrears"] == 0

    async def cured() -> dict[str, Any] | None:
        credit = await bank.credit(karima.client_id)
        return credit if credit["loans_in_arrears"] == [] else None

    await eventually(cured, what="clients told of the cure")
    await bank.wait_sms(karima.client_id, "arrears_cured")
    again = await disbursed(bank, karima, product, "1000.00", 3)
    await bank.check_invariants([loan_id, refused, again["id"]])


# -- 3. write-off by maker-checker, then a recovery ----------------------------------------------
async def test_write_off_by_two_operators_then_a_recovery_and_a_credit_hold(bank: Bank
                                                                             ) -> None:
    omar = await bank.onboard()
    product = await bank.product(annual_rate="0.24", frequency="weekly", max_term=12)
    loan = await disbursed(bank, omar, product, "1000.00", 4)
    loan_id = loan["id"]
    first = (await schedule(bank, loan_id))[0]
    # 180 days after the first missed installment (WRITE_OFF_MIN_DAYS_IN_ARREARS): close of
    # business runs every night since the last one closed, in order.
    late = date.fromisoformat(first["due_date"]) + timedelta(days=180)
    now = await bank.business_date()
    assert now <= late, f"the business date {now} is already past {late}"
    await bank.close_business(late, timeout_s=600)
    overdue = await bank.loan(loan_id)
    assert overdue["days_in_arrears"] == 180, overdue
    owed_principal = D(overdue["outstanding"]["principal"])
    assert owed_principal == D("1000.00")

    # One operator proposes; the same operator cannot approve; another does.
    request = await bank.call("POST", "loans", f"/v1/loans/{loan_id}/write-off",
                              headers=bank.maker, expect=202,
                              json={"reason": "180 days late, no contact"})
    assert request["status"] == "pending" and request["kind"] == "write_off"
    assert (await bank.loan(loan_id))["status"] == "active"
    await bank.call("POST", "loans", f"/v1/loan-requests/{request['id']}/approve",
                    headers=bank.maker, expect=403, json={})
    decided = await bank.call("POST", "loans", f"/v1/loan-requests/{request['id']}/approve",
                              headers=bank.checker, json={})
    assert decided["status"] == "approved" and decided["decided_by"] == "operator-youssef"
    written_off = await bank.wait_status(loan_id, "written_off")
    assert D(written_off["recovered_amount"]) == D("0.00")

    async def off_the_books() -> dict[str, Any] | None:
        books = await bank.call("GET", "payments", f"/v1/loans/{loan_id}/portfolio-balance",
                                headers=bank.maker)
        return books if D(books["portfolio_balance"]) == D("0.00") else None

    await eventually(off_the_books, what="the write-off booked by payments")
    await bank.check_invariants([loan_id])

    # Money received afterwards is a recovery: income, the loan stays written off.
    recovery = D("300.00")
    await bank.repay_from_wallet(omar, loan_id, str(recovery))

    async def recovered() -> dict[str, Any] | None:
        now = await bank.loan(loan_id)
        return now if D(now["recovered_amount"]) == recovery else None

    after = await eventually(recovered, what="the recovery recorded on the loan")
    assert after["status"] == "written_off"

    async def recovery_income() -> list[dict[str, Any]] | None:
        statement = await bank.call("GET", "payments",
                                    "/v1/accounts/income:recoveries/statement",
                                    headers=bank.maker, params={"limit": 500})
        lines = [x for x in statement["lines"] if x["loan_id"] == loan_id]
        return lines or None

    [line] = await eventually(recovery_income, what="recovery income in the ledger")
    assert line["side"] == "credit" and D(line["amount"]) == recovery, line
    assert D((await bank.wallet(omar.phone))["refunds"]) == D("0.00")

    # The client is held from new credit until two operators lift it.
    async def held() -> dict[str, Any] | None:
        credit = await bank.credit(omar.client_id)
        return credit if credit["credit_hold"] else None

    credit = await eventually(held, what="the written-off hold on the client")
    assert [h["loan_id"] for h in credit["holds"]] == [loan_id]
    refused = await rejected_for(bank, omar, product, "written_off_loan")

    lift = await bank.call("POST", "clients", f"/v1/clients/{omar.client_id}/credit-hold/lift",
                           headers=bank.maker, expect=201,
                           json={"reason": "recovery plan agreed by the credit committee"})
    assert lift["status"] == "pending"
    await bank.call("POST", "clients", f"/v1/clients/{omar.client_id}/credit-hold/lift/approve",
                    headers=bank.maker, expect=403, json={})
    await bank.call("POST", "clients", f"/v1/clients/{omar.client_id}/credit-hold/lift/approve",
                    headers=bank.checker, json={})
    assert (await bank.credit(omar.client_id))["credit_hold"] is False
    again = await disbursed(bank, omar, product, "1000.00", 4)
    await bank.check_invariants([loan_id, refused, again["id"]])
