"""Property tests of the posting rules: whatever happens, the books stay sound."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.payments.domain import accounts as acc
from services.payments.domain import postings
from services.payments.domain.accounts import spec_for
from services.payments.domain.ledger import (
    ZERO,
    Entry,
    InsufficientBalance,
    TransferExists,
    Unbalanced,
    credit,
    debit,
    effect,
)
from shared.errors import Conflict, DomainError
from tests.unit.payments.memory_ledger import Ledger

LOANS = ["L1", "L2", "L3"]
PROVIDERS = ["sim", "orange"]
amounts = st.integers(min_value=1, max_value=500_000).map(lambda c: Decimal(c) / 100)


def split(amount: Decimal, weights: tuple[int, int, int, int]) -> dict[str, Decimal]:
    """Split ``amount`` into the four components (cents exact, sums to amount)."""
    cents = int(amount * 100)
    total = sum(weights) or 1
    parts = [cents * w // total for w in weights]
    parts[0] += cents - sum(parts)
    names = ["principal", "interest", "fees", "penalties"]
    return {n: Decimal(p) / 100 for n, p in zip(names, parts, strict=True)}


operation = st.one_of(
    st.tuples(st.just("fund"), st.sampled_from(PROVIDERS), amounts),
    st.tuples(st.just("disburse"), st.sampled_from(LOANS), st.sampled_from(PROVIDERS), amounts),
    st.tuples(st.just("fail_disbursement"), st.integers(0, 30)),
    st.tuples(st.just("collect"), st.sampled_from(LOANS), st.sampled_from(PROVIDERS), amounts),
    st.tuples(st.just("apply"), st.integers(0, 30),
              st.tuples(*[st.integers(0, 5)] * 4)),
    st.tuples(st.just("reject"), st.integers(0, 30)),
    st.tuples(st.just("fail_refund"), st.integers(0, 30)),
    st.tuples(st.just("write_off"), st.sampled_from(LOANS)),
    st.tuples(st.just("replay"), st.integers(0, 60)),
    st.tuples(st.just("tamper"), st.integers(0, 60), amounts),
)


def recomputed(ledger: Ledger) -> dict[str, Decimal]:
    """Balances from the entries alone (independent of the ledger's running totals)."""
    out: dict[str, Decimal] = {}
    for _, entry in ledger.entries.values():
        for account, delta in effect(entry).items():
            out[account] = out.get(account, ZERO) + delta
    return out


def assert_sound(ledger: Ledger) -> None:
    debits, credits = ledger.trial_balance()
    assert debits == credits, "the trial balance is not zero"
    for account, balance in ledger.balances.items():
        if spec_for(account).non_negative:
            assert balance >= 0, f"{account} went negative: {balance}"
    assert {k: v for k, v in recomputed(ledger).items() if v} == {
        k: v for k, v in ledger.balances.items() if v}


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, min_size=1, max_size=60))
def test_any_sequence_keeps_the_trial_balance_zero_and_no_constrained_account_negative(
    ops: list[tuple]
) -> None:
    ledger = Ledger()
    disbursements: list[Entry] = []
    collections: list[tuple[str, str, str, Decimal]] = []  # payment id, loan, provider, amount
    refunds: list[Entry] = []
    posted: list[Entry] = []
    seq = 0
    for op in ops:
        seq += 1
        before = dict(ledger.balances)
        count = len(ledger.entries)
        entry: Entry | None = None
        try:
            kind = op[0]
            if kind == "fund":
                entry = postings.funding(op[1], op[2], f"f{seq}")
            elif kind == "disburse":
                entry = postings.disbursement(f"s{seq}", op[1], op[2], op[3])
            elif kind == "fail_disbursement" and disbursements:
                entry = disbursements[op[1] % len(disbursements)].reversal()
            elif kind == "collect":
                entry = postings.collection(f"p{seq}", op[1], op[2], op[3])
            elif kind == "apply" and collections:
                pid, loan, _, amount = collections[op[1] % len(collections)]
                entry = postings.repayment(pid, loan, amount, split(amount, op[2]))
            elif kind == "reject" and collections:
                pid, loan, provider, amount = collections[op[1] % len(collections)]
                due = postings.refund_due(pid, loan, amount)
                ledger.post(due)
                posted.append(due)
                entry = postings.refund_payout(pid, loan, provider, amount)
            elif kind == "fail_refund" and refunds:
                entry = refunds[op[1] % len(refunds)].reversal()
            elif kind == "write_off":
                balance = ledger.balances.get(acc.portfolio(op[1]), ZERO)
                if balance > 0:
                    entry = postings.write_off(op[1], balance)
            elif kind == "replay" and posted:
                original = posted[op[1] % len(posted)]
                assert ledger.post(original) == original
                assert ledger.balances == before
                continue
            elif kind == "tamper" and posted:
                original = posted[op[1] % len(posted)]
                forged = Entry(original.transfer_id, original.kind,
                               (debit(acc.FUNDING, op[2]), credit(acc.INTEREST_INCOME, op[2])))
                with pytest.raises(TransferExists):
                    ledger.post(forged)
                assert ledger.balances == before
                continue
            if entry is None:
                continue
            ledger.post(entry)
            posted.append(entry)
            if kind == "disburse":
                disbursements.append(entry)
            elif kind == "collect":
                collections.append((f"p{seq}", op[1], op[2], op[3]))
            elif kind == "reject":
                refunds.append(entry)
        except (InsufficientBalance, Conflict, DomainError) as exc:
            # A refused entry changes nothing (a reject's refund_due may have posted first:
            # that is a balanced entry of its own).
            if not isinstance(exc, InsufficientBalance | Conflict):
                raise
            if kind != "reject":
                assert ledger.balances == before
                assert len(ledger.entries) == count
        assert_sound(ledger)


def test_an_unbalanced_entry_is_refused() -> None:
    with pytest.raises(Unbalanced):
        Entry("t1", "manual", (debit(acc.FUNDING, Decimal("10.00")),
                               credit(acc.INTEREST_INCOME, Decimal("9.99"))))


def test_a_one_line_entry_is_refused() -> None:
    with pytest.raises(Unbalanced):
        Entry("t1", "manual", (debit(acc.FUNDING, Decimal("10.00")),))


def test_an_account_outside_the_chart_is_refused() -> None:
    with pytest.raises(ValueError, match="chart of accounts"):
        Entry("t1", "manual", (debit("petty-cash", Decimal("1.00")),
                               credit(acc.FUNDING, Decimal("1.00"))))


def test_disbursing_more_than_the_provider_float_is_refused_and_changes_nothing() -> None:
    ledger = Ledger()
    ledger.post(postings.funding("sim", Decimal("100.00"), "f1"))
    with pytest.raises(InsufficientBalance):
        ledger.post(postings.disbursement("s1", "L1", "sim", Decimal("100.01")))
    assert ledger.balances[acc.settlement("sim")] == Decimal("100.00")
    assert acc.portfolio("L1") not in ledger.balances


def test_repaying_more_principal_than_outstanding_is_refused() -> None:
    ledger = Ledger()
    ledger.post(postings.funding("sim", Decimal("1000.00"), "f1"))
    ledger.post(postings.disbursement("s1", "L1", "sim", Decimal("500.00")))
    ledger.post(postings.collection("p1", "L1", "sim", Decimal("600.00")))
    with pytest.raises(InsufficientBalance):
        ledger.post(postings.repayment("p1", "L1", Decimal("600.00"),
                                       {"principal": Decimal("600.00")}))
    ledger.post(postings.repayment("p1", "L1", Decimal("600.00"),
                                   {"principal": Decimal("500.00"),
                                    "interest": Decimal("100.00")}))
    assert ledger.balances[acc.portfolio("L1")] == ZERO
    assert ledger.balances[acc.INTEREST_INCOME] == Decimal("100.00")
    assert ledger.balances[acc.SUSPENSE] == ZERO


def test_an_entry_is_reversed_once_only() -> None:
    ledger = Ledger()
    ledger.post(postings.funding("sim", Decimal("1000.00"), "f1"))
    d = ledger.post(postings.disbursement("s1", "L1", "sim", Decimal("500.00")))
    ledger.post(d.reversal())
    with pytest.raises(Conflict):
        ledger.post(d.reversal(transfer_id="another-id"))
    assert ledger.balances[acc.portfolio("L1")] == ZERO
    assert ledger.balances[acc.settlement("sim")] == Decimal("1000.00")


def test_an_allocation_that_does_not_add_up_is_refused() -> None:
    with pytest.raises(DomainError, match="adds up"):
        postings.repayment("p1", "L1", Decimal("100.00"), {"principal": Decimal("90.00")})
