"""Phone, CIN, age, language and name rules, as a partner app meets them."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.clients.domain.identity import (
    age_on,
    check_adult,
    check_language,
    normalise_cin,
    normalise_name,
    normalise_phone,
)
from shared.contracts.common import Msisdn
from shared.errors import InvalidInput


@pytest.mark.parametrize("raw", [
    "0612345678", "06 12 34 56 78", "06-12-34-56-78", "06.12.34.56.78",
    "+212612345678", "+212 6 12 34 56 78", "00212612345678", "212612345678",
    "+212 0612345678", "(+212) 612-345-678",
])
def test_moroccan_mobile_forms_normalise_to_e164(raw: str) -> None:
    assert normalise_phone(raw) == "+212612345678"


def test_07_numbers_are_mobiles_too() -> None:
    assert normalise_phone("0712345678") == "+212712345678"
    assert normalise_phone("002127 12 34 56 78") == "+212712345678"


@pytest.mark.parametrize("raw", [
    "", "0512345678",          # landline
    "+212512345678",           # landline in E.164
    "061234567",               # too short
    "06123456789",             # too long
    "+33612345678",            # not Moroccan
    "0033612345678",
    "06a2345678", "+2126123x5678", "612345678",
])
def test_bad_phones_are_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalise_phone(raw)
    assert err.value.field == "phone"


@given(prefix=st.sampled_from(["6", "7"]), rest=st.text("0123456789", min_size=8, max_size=8),
       form=st.sampled_from(["0{n}", "+212{n}", "00212{n}", "212{n}", "+212 0{n}"]))
def test_every_accepted_form_gives_the_same_valid_e164(prefix: str, rest: str, form: str
                                                      ) -> None:
    nsn = prefix + rest
    e164 = normalise_phone(form.format(n=nsn))
    assert e164 == f"+212{nsn}"
    assert normalise_phone(e164) == e164  # idempotent
    from pydantic import TypeAdapter
    assert TypeAdapter(Msisdn).validate_python(e164) == e164  # the contracts accept it


@pytest.mark.parametrize(("raw", "cin"), [
    ("BE123456", "BE123456"), ("be123456", "BE123456"), (" A 12345 ", "A12345"),
    ("JA-1234", "JA1234"), ("x1", "X1"),
])
def test_cin_is_one_or_two_letters_then_digits(raw: str, cin: str) -> None:
    assert normalise_cin(raw) == cin


@pytest.mark.parametrize("raw", ["", "123456", "ABC123", "B", "BE12345678", "B1E23", "É12345",
                                 "BE 12345 6X"])
def test_malformed_cin_is_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalise_cin(raw)
    assert err.value.field == "national_id"


def test_adulthood_is_reached_on_the_eighteenth_birthday() -> None:
    born = dt.date(2008, 3, 15)
    assert check_adult(born, dt.date(2026, 3, 15)) == born
    with pytest.raises(InvalidInput) as err:
        check_adult(born, dt.date(2026, 3, 14))
    assert err.value.field == "date_of_birth"
    assert "17" in err.value.detail


def test_leap_day_birthdays_and_implausible_ages() -> None:
    assert age_on(dt.date(2004, 2, 29), dt.date(2022, 2, 28)) == 17
    assert age_on(dt.date(2004, 2, 29), dt.date(2022, 3, 1)) == 18
    with pytest.raises(InvalidInput):
        check_adult(dt.date(2030, 1, 1), dt.date(2026, 1, 1))
    with pytest.raises(InvalidInput):
        check_adult(dt.date(1890, 1, 1), dt.date(2026, 1, 1))


@given(born=st.dates(min_value=dt.date(1910, 1, 1), max_value=dt.date(2030, 1, 1)),
       today=st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2040, 1, 1)))
def test_age_matches_the_birthday_rule(born: dt.date, today: dt.date) -> None:
    age = age_on(born, today)
    # The age is the number of birthdays passed: at most one year off the year difference.
    assert age in (today.year - born.year, today.year - born.year - 1)
    had_birthday = (today.month, today.day) >= (born.month, born.day)
    assert (age == today.year - born.year) == had_birthday


def test_languages_are_french_or_arabic() -> None:
    assert check_language("fr") == "fr"
    assert check_language(" AR ") == "ar"
    for bad in ("en", "", "darija"):
        with pytest.raises(InvalidInput) as err:
            check_language(bad)
        assert err.value.field == "language"


def test_names_are_trimmed_and_required() -> None:
    assert normalise_name("  Fatima   Zahra  El Amrani ") == "Fatima Zahra El Amrani"
    with pytest.raises(InvalidInput):
        normalise_name("  ")
