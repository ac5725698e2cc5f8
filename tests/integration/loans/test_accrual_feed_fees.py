"""Loans' accrual feed carries the fees of installments falling due that day, so payments
accrues them when due (version 2 of ``InterestAccrued``); a version 1 event, without
them, still parses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from shared.contracts.loans import InterestAccrued
from shared.envelope import Envelope
from tests.infra import Infra
from tests.integration.loans.cob_helpers import close_of_business
from tests.integration.loans.facts import output_reader, settled
from tests.integration.loans.harness import running_loans

# 15.00 on every installment, on top of the flat interest
FEES = [{"kind": "flat", "value": "15.00", "timing": "per_installment"}]


async def test_the_fees_of_an_installment_falling_due_are_in_the_days_accrual_feed(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        with_fees = await svc.create_product(fees=FEES)
        plain = await svc.create_product()
        # 1 200.00 over 4 months from the 5th of January: the first installment is due
        # on the 5th of February, with 15.00 of fees on the first product
        loan = (await svc.active_loan(with_fees, disbursed_on=date(2026, 1, 5)))["id"]
        other = (await svc.active_loan(plain, disbursed_on=date(2026, 1, 5)))["id"]
        for day in ("2026-02-04", "2026-02-05", "2026-02-06"):
            run = await close_of_business(svc.client, svc.operator, day)
            assert run["status"] == "succeeded", run
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            feed = {e.payload["business_date"]: e for e in sent.matching("InterestAccrued")}
        assert sorted(feed) == ["2026-02-04", "2026-02-05", "2026-02-06"]
        assert {e.env.version for e in feed.values() if e.env} == {2}

        def line(day: str, loan_id: str) -> tuple[str, str]:
            found = [x for x in feed[day].payload["loans"] if x["loan_id"] == loan_id]
            assert len(found) == 1
            return found[0]["interest"], found[0]["fees_due"]

        # flat: 1 200.00 x 0.12 / 365 = 0.3945... -> 0.39 a day; fees only on the due date
        assert line("2026-02-04", loan) == ("0.39", "0.00")
        assert line("2026-02-05", loan) == ("0.39", "15.00")
        assert line("2026-02-06", loan) == ("0.39", "0.00")
        assert line("2026-02-05", other) == ("0.39", "0.00")
        parsed = feed["2026-02-05"].env
        assert parsed is not None
        message = parsed.parse()
        assert isinstance(message, InterestAccrued)
        assert {ln.loan_id: ln.fees_due for ln in message.loans}[loan] == Decimal("15.00")


def test_a_version_1_event_without_fees_still_parses() -> None:
    old = Envelope(type="InterestAccrued", version=1, aggregate_id="2025-10-02", payload={
        "business_date": "2025-10-02", "batch": 0, "batches": 1, "loans": [
            {"loan_id": "K1", "interest": "0.55", "days_in_arrears": 0,
             "product_id": None, "office_id": None, "restructured": False}]})
    message = old.parse()
    assert isinstance(message, InterestAccrued)
    assert message.loans[0].fees_due == Decimal("0.00")
