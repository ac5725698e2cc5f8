"""A staged accrual batch keeps every figure of its loans as received: amounts to the
centime as decimals (never floats), unknown product and office, restructured, fees due."""

from __future__ import annotations

from decimal import Decimal

from services.payments.handlers.accounting import LoanDay
from services.payments.handlers.accrual_batches import decode, encode


def test_a_staged_batch_reads_back_as_received() -> None:
    loans = [LoanDay("L1", Decimal("0.01"), 0, "p-micro", "b-fes", False, Decimal("15.00")),
             LoanDay("L2", Decimal("123456789.99"), 120, None, None, True),
             LoanDay("L3", Decimal("0.10"), 3)]
    text = encode(loans)
    assert "0.10" in text and "123456789.99" in text  # decimal strings, not numbers
    assert decode(text) == loans
    assert all(isinstance(ln.interest, Decimal) and isinstance(ln.fees_due, Decimal)
               for ln in decode(text))


def test_an_emptied_batch_reads_as_no_loans() -> None:
    assert decode(None) == [] and decode(encode([])) == []
