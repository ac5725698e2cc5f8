"""A transferred client's balances moving between branches, the capitalised-interest
reserve released as its principal is repaid and consumed by a write-off, and fees
accrued when they fall due — each with figures worked by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.payments.domain import office_transfers as transfers
from services.payments.domain import postings, servicing
from services.payments.domain.accounts import Side
from tests.unit.payments.memory_ledger import Ledger

D = Decimal
DAY = dt.date(2025, 6, 2)


def test_a_transfer_moves_each_balance_and_each_branch_balances_on_its_own() -> None:
    # portfolio:L 4000.00 and interest receivable 12.50 booked at Tiznit, 1000.00 of the
    # portfolio already at Tanger (an earlier partial move); allowance 200.00 (credit)
    held = [transfers.Held("portfolio:L", "b-tiznit", D("4000.00")),
            transfers.Held("portfolio:L", "b-tanger", D("1000.00")),
            transfers.Held("interest_receivable:L", "b-tiznit", D("12.50")),
            transfers.Held("allowance:L", "b-tiznit", D("-200.00"))]
    lines = transfers.transfer_lines(held, "b-tanger")
    got = {(ln.account, ln.side, ln.amount, ln.office_id) for ln in lines}
    assert got == {
        ("allowance:L", Side.DEBIT, D("200.00"), "b-tiznit"),
        ("liaison:offices", Side.CREDIT, D("200.00"), "b-tiznit"),
        ("allowance:L", Side.CREDIT, D("200.00"), "b-tanger"),
        ("liaison:offices", Side.DEBIT, D("200.00"), "b-tanger"),
        ("interest_receivable:L", Side.CREDIT, D("12.50"), "b-tiznit"),
        ("liaison:offices", Side.DEBIT, D("12.50"), "b-tiznit"),
        ("interest_receivable:L", Side.DEBIT, D("12.50"), "b-tanger"),
        ("liaison:offices", Side.CREDIT, D("12.50"), "b-tanger"),
        ("portfolio:L", Side.CREDIT, D("4000.00"), "b-tiznit"),
        ("liaison:offices", Side.DEBIT, D("4000.00"), "b-tiznit"),
        ("portfolio:L", Side.DEBIT, D("4000.00"), "b-tanger"),
        ("liaison:offices", Side.CREDIT, D("4000.00"), "b-tanger")}
    assert len(lines) == 12 and transfers.balanced_per_office(lines)
    # Tiznit's liaison: 4000.00 + 12.50 - 200.00 = 3812.50 owed to it by Tanger
    tiznit = sum((ln.amount if ln.side is Side.DEBIT else -ln.amount) for ln in lines
                 if ln.account == "liaison:offices" and ln.office_id == "b-tiznit")
    assert tiznit == D("3812.50")
    # nothing held elsewhere: nothing to post
    assert transfers.transfer_lines([held[1]], "b-tanger") == []


def test_the_reserve_is_released_in_proportion_to_the_principal_repaid() -> None:
    """Portfolio 900.00, restructured capitalising 100.00 of interest never accrued
    (cash basis): portfolio 1000.00, reserve 100.00. Principal repaid 250.00 releases
    100 x 250 / 1000 = 25.00; then 300.00 of 750.00 releases 75 x 300 / 750 = 30.00;
    the rest, 450.00, releases the 45.00 left."""
    ledger = Ledger()
    ledger.post(postings.funding("sim", D("5000.00"), "f"))
    ledger.post(postings.disbursement("s", "L", "sim", D("900.00")))
    ledger.post(servicing.capitalisation("L", 2, D("100.00"), D("0.00"), day=DAY).entry)
    assert ledger.balances["portfolio:L"] == D("1000.00")
    assert ledger.balances["capitalised_interest:L"] == D("100.00")
    released = []
    for n, principal in enumerate((D("250.00"), D("300.00"), D("450.00"))):
        release = postings.reserve_release(ledger.balances["capitalised_interest:L"],
                                           principal, ledger.balances["portfolio:L"])
        ledger.post(postings.collection(f"p{n}", "L", "sim", principal))
        ledger.post(postings.repayment(f"p{n}", "L", principal, {"principal": principal},
                                       reserve_released=release))
        released.append(release)
    assert released == [D("25.00"), D("30.00"), D("45.00")]
    assert ledger.balances["capitalised_interest:L"] == 0
    assert ledger.balances["portfolio:L"] == 0
    assert ledger.balances["income:interest"] == D("100.00")
    debits, credits = ledger.trial_balance()
    assert debits == credits


def test_a_release_rounds_to_the_cent_and_never_leaves_a_centime() -> None:
    # 10.00 reserved on 3000.00: 1000.00 repaid releases 3.33 (3.333…), twice, then the
    # last 1000.00 releases what is left, 3.34
    assert postings.reserve_release(D("10.00"), D("1000.00"), D("3000.00")) == D("3.33")
    assert postings.reserve_release(D("6.67"), D("1000.00"), D("2000.00")) == D("3.34")
    assert postings.reserve_release(D("3.34"), D("1000.00"), D("1000.00")) == D("3.34")
    assert postings.reserve_release(D("0.00"), D("1000.00"), D("1000.00")) == 0
    assert postings.reserve_release(D("5.00"), D("0.00"), D("1000.00")) == 0


def test_a_write_off_consumes_the_reserve_before_the_allowance() -> None:
    """Portfolio 450.00 of which 45.00 is capitalised interest still reserved, allowance
    100.00: the reserve takes 45.00 (never income, so no loss), the allowance 100.00,
    the write-off expense the remaining 305.00."""
    ledger = Ledger()
    ledger.post(postings.funding("sim", D("5000.00"), "f"))
    ledger.post(postings.disbursement("s", "L", "sim", D("405.00")))
    ledger.post(servicing.capitalisation("L", 2, D("45.00"), D("0.00"), day=DAY).entry)
    ledger.post(postings.provision("L", DAY, D("100.00")))
    entry = postings.write_off("L", D("450.00"), allowance=D("100.00"), reserve=D("45.00"))
    got = {(ln.account, ln.side, ln.amount) for ln in entry.lines}
    assert got == {("portfolio:L", Side.CREDIT, D("450.00")),
                   ("capitalised_interest:L", Side.DEBIT, D("45.00")),
                   ("allowance:L", Side.DEBIT, D("100.00")),
                   ("expense:write_off", Side.DEBIT, D("305.00"))}
    ledger.post(entry)
    for account in ("portfolio:L", "capitalised_interest:L", "allowance:L"):
        assert ledger.balances.get(account, D("0")) == 0
    # an allowance larger than the loss: the excess is written back
    back = postings.write_off("L2", D("100.00"), allowance=D("95.00"), reserve=D("10.00"))
    assert ("expense:provisions", Side.CREDIT, D("5.00")) in {
        (ln.account, ln.side, ln.amount) for ln in back.lines}


def test_fees_are_accrued_when_due_and_settled_by_the_repayment() -> None:
    """An installment of 500.00 principal + 40.00 interest + 15.00 fees falls due on
    2 June (accrual basis). Interest accrued day by day: 40.00 receivable; the fees
    fall due that day: 15.00 receivable, 15.00 fee income. The client pays 555.00: the
    receivables are settled, no income is booked twice (interest 40.00, fees 15.00 in
    all). Then 10.00 of fees due on 2 July, never paid, reversed by the write-off."""
    ledger = Ledger()
    ledger.post(postings.funding("sim", D("5000.00"), "f"))
    ledger.post(postings.disbursement("s", "L", "sim", D("1000.00")))
    ledger.post(postings.interest_accrual("L", DAY, D("40.00")))
    ledger.post(postings.fee_accrual("L", DAY, D("15.00")))
    assert ledger.balances["fee_receivable:L"] == D("15.00")
    assert ledger.balances["income:fees"] == D("15.00")
    parts = {"principal": D("500.00"), "interest": D("40.00"), "fees": D("15.00")}
    ledger.post(postings.collection("p1", "L", "sim", D("555.00")))
    ledger.post(postings.repayment("p1", "L", D("555.00"), parts, receivable=D("40.00"),
                                   fees_receivable=D("15.00")))
    assert ledger.balances["fee_receivable:L"] == 0
    assert ledger.balances["interest_receivable:L"] == 0
    assert ledger.balances["income:fees"] == D("15.00")
    assert ledger.balances["income:interest"] == D("40.00")
    # fees paid beyond what was accrued (cash basis, or not yet due) are income directly
    early = postings.repayment("p2", "L", D("5.00"), {"fees": D("5.00")},
                               fees_receivable=D("0.00"))
    assert {(ln.account, ln.amount) for ln in early.lines if ln.side is Side.CREDIT} == {
        ("income:fees", D("5.00"))}
    ledger.post(postings.fee_accrual("L", DAY + dt.timedelta(days=30), D("10.00")))
    ledger.post(postings.write_off("L", D("500.00"), fees_receivable=D("10.00")))
    assert ledger.balances["fee_receivable:L"] == 0
    assert ledger.balances["income:fees"] == D("15.00")
    debits, credits = ledger.trial_balance()
    assert debits == credits
