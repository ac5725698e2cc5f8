"""Account ids are lower-case UUIDs, found from any case or from their SAV- reference."""

from __future__ import annotations

import uuid

from services.savings.domain.account import canonical_id, canonical_loan_id
from shared.contracts.savings import payment_reference


def test_the_reference_is_sav_and_the_lower_case_id() -> None:
    account_id = str(uuid.uuid4())
    assert payment_reference(account_id.upper()) == f"SAV-{account_id}"


def test_an_id_is_found_in_any_case_and_from_its_reference() -> None:
    account_id = str(uuid.uuid4())
    for raw in (account_id, account_id.upper(), f"SAV-{account_id}", f"sav-{account_id}",
                f" SAV-{account_id.upper()} "):
        assert canonical_id(raw) == account_id
    assert canonical_id("not-an-account") is None
    assert canonical_id("SAV-") is None


def test_a_loan_id_is_compared_as_loans_stores_it() -> None:
    loan_id = str(uuid.uuid4())
    assert canonical_loan_id(loan_id.upper()) == loan_id
    assert canonical_loan_id(" loan-7 ") == "loan-7"
