"""Branch cash and standing-instruction postings (pure): the accounts they name, the
sides of a day-end difference, balanced entries, and the payment ids of repayments that
do not come from a wallet."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from services.payments.domain import accounts as acc
from services.payments.domain import chart, postings
from services.payments.domain.ledger import Entry, Unbalanced, credit, debit
from services.payments.domain.repayment_ids import payment_uuid
from shared.errors import InvalidInput
from tests.unit.payments.memory_ledger import Ledger

MIGRATIONS = Path(__file__).resolve().parents[3] / "services/payments/migrations"


def test_branch_accounts_are_in_the_chart() -> None:
    cash = acc.spec_for(acc.branch_cash("b-agadir"))
    assert cash.id == "cash:branch:b-agadir" and cash.kind is acc.Kind.BRANCH_OFFICE_CASH
    assert cash.normal is acc.Side.DEBIT
    diff = acc.spec_for(acc.branch_cash_suspense("b-agadir"))
    assert diff.id == "suspense:cash:branch:b-agadir"
    assert diff.kind is acc.Kind.BRANCH_CASH_SUSPENSE
    # the fixed accounts with similar names keep their kinds
    assert acc.spec_for("cash:branches").kind is acc.Kind.BRANCH_CASH
    assert acc.spec_for("suspense").kind is acc.Kind.SUSPENSE
    with pytest.raises(ValueError):
        acc.spec_for("cash:branch:")


def test_a_collection_moves_cash_into_suspense_once() -> None:
    ledger = Ledger()
    entry = postings.cash_collection("csh_1", "L1", "cash:branch:b-1", Decimal("350.00"),
                                     office_id="b-1")
    ledger.post(entry)
    ledger.post(entry)   # the same transfer again: nothing more
    assert ledger.balances == {"cash:branch:b-1": Decimal("350.00"),
                               "suspense": Decimal("350.00")}
    assert entry.transfer_id == "cash_collection:csh_1" and entry.office_id == "b-1"


@pytest.mark.parametrize(("difference", "debited", "credited"), [
    (Decimal("-20.00"), "suspense:cash:branch:b-1", "cash:branch:b-1"),   # shortage
    (Decimal("5.50"), "cash:branch:b-1", "suspense:cash:branch:b-1"),     # overage
])
def test_a_day_end_difference_sides(difference: Decimal, debited: str, credited: str
                                    ) -> None:
    entry = postings.cash_difference("cr_1", "cash:branch:b-1", "suspense:cash:branch:b-1",
                                     difference)
    assert {(ln.account, ln.side.value, ln.amount) for ln in entry.lines} == {
        (debited, "debit", abs(difference)), (credited, "credit", abs(difference))}
    assert entry.transfer_id == "cash_difference:cr_1"


def test_no_difference_is_no_entry() -> None:
    with pytest.raises(InvalidInput):
        postings.cash_difference("cr_1", "cash:branch:b-1", "suspense:cash:branch:b-1",
                                 Decimal("0.00"))


def test_a_shortage_before_its_collections_is_booked() -> None:
    # the count (keyed by office) may arrive before the collections (keyed by loan)
    ledger = Ledger()
    ledger.post(postings.cash_difference("cr_1", "cash:branch:b-1",
                                         "suspense:cash:branch:b-1", Decimal("-20.00")))
    ledger.post(postings.cash_collection("csh_1", "L1", "cash:branch:b-1", Decimal("500.00")))
    assert ledger.balances["cash:branch:b-1"] == Decimal("480.00")
    assert ledger.trial_balance()[0] == ledger.trial_balance()[1]


def test_a_standing_instruction_and_its_return_mirror_savings() -> None:
    ledger = Ledger()
    ledger.post(postings.standing_instruction("p1", "L1", "acc-1", Decimal("420.00")))
    ledger.post(postings.standing_instruction_return("p1", "L1", "acc-1", Decimal("20.00")))
    assert ledger.balances[acc.savings_deposits("acc-1")] == Decimal("-400.00")
    assert ledger.balances["suspense"] == Decimal("400.00")
    debits, credits = ledger.trial_balance()
    assert debits == credits


def test_payment_ids_that_are_not_uuids_map_to_one_uuid() -> None:
    wallet = uuid.uuid4()
    assert payment_uuid(str(wallet)) == wallet
    cash = "csh_0f3a5c1e93a44d7eb6a12c1d9e0f4a77"
    assert payment_uuid(cash) == payment_uuid(cash) != uuid.UUID(cash[4:])
    assert payment_uuid(cash) != payment_uuid("csh_other")


def test_every_role_has_a_default_rule_in_the_seeded_chart() -> None:
    seeded: set[str] = set()
    for sql in sorted(MIGRATIONS.glob("*.sql")):
        seeded |= set(re.findall(r"\('\*',\s*'([a-z_]+)'", sql.read_text()))
    assert set(chart.ROLES) <= seeded
    for debited, credited in chart.POSTING_KINDS.values():
        assert set(debited) | set(credited) <= set(chart.ROLES) | {"income"}


def test_an_unbalanced_cash_entry_is_refused() -> None:
    with pytest.raises(Unbalanced):
        Entry("x", "cash_collection", (debit("cash:branch:b-1", Decimal("1.00")),
                                         credit("suspense", Decimal("2.00"))))
