"""Template rendering in French and Arabic: formats, variables, errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.notifications.domain.templates import (
    Template,
    format_money,
    pick,
    render,
    validate_new_version,
)
from shared.errors import InvalidInput, NotFound

VARS = {"amount": "money", "wallet": "phone_tail", "first_due_amount": "money",
        "first_due_date": "date"}
FR = Template("loan_disbursed", 1, "fr",
              "Noria: votre prêt de {amount} a été versé sur votre portefeuille ****{wallet}. "
              "1re échéance: {first_due_amount} le {first_due_date}.", VARS, urgent=True)
AR = Template("loan_disbursed", 1, "ar",
              "نوريا: تم تحويل قرضكم بمبلغ {amount} إلى محفظتكم ****{wallet}. "
              "القسط الأول: {first_due_amount} بتاريخ {first_due_date}.", VARS, urgent=True)
VALUES: dict[str, object] = {"amount": Decimal("5000.00"), "wallet": "+212612345678",
                             "first_due_amount": Decimal("468.20"),
                             "first_due_date": dt.date(2027, 4, 12)}


class TestFrench:
    def test_amounts_dates_and_wallet_are_written_the_french_way(self) -> None:
        r = render(FR, VALUES)
        assert r.text == ("Noria: votre pret de 5 000,00 MAD a été versé sur votre "
                          "portefeuille ****5678. 1re échéance: 468,20 MAD le 12/04/2027.")
        assert (r.encoded.encoding, r.encoded.segments) == ("GSM-7", 1)

    def test_keep_policy_keeps_the_circumflex_and_pays_for_ucs2(self) -> None:
        kept = Template(FR.name, 2, "fr", FR.body, VARS, policy="keep")
        r = render(kept, VALUES)
        assert "prêt" in r.text and r.encoded.encoding == "UCS-2"
        assert r.encoded.segments == 2  # one part in GSM-7, two in UCS-2

    def test_json_strings_are_accepted_for_preview(self) -> None:
        r = render(FR, {"amount": "12500.5", "wallet": "0612345678",
                        "first_due_amount": "1000", "first_due_date": "2027-01-05"})
        assert "12 500,50 MAD" in r.text and "1 000,00 MAD le 05/01/2027" in r.text


class TestArabic:
    def test_arabic_is_ucs2_with_latin_digits_and_dirham(self) -> None:
        r = render(AR, VALUES)
        assert r.encoded.encoding == "UCS-2"
        assert "5\u00a0000,00 درهم" in r.text
        assert "468,20 درهم" in r.text and "12/04/2027" in r.text and "****5678" in r.text
        assert r.encoded.segments == 2

    def test_thousands_separator_stays_inside_the_number_for_right_to_left_phones(self) -> None:
        # A plain space is a bidi neutral: in a right-to-left line "5 000,00" would show as
        # "000,00 5". A no-break space is a common separator and keeps the number whole.
        assert format_money(Decimal("1234567.89"), "ar") == "1\u00a0234\u00a0567,89 درهم"
        assert format_money(Decimal("1234567.89"), "fr") == "1 234 567,89 MAD"


class TestMoney:
    @pytest.mark.parametrize(("amount", "text"), [
        ("0", "0,00 MAD"), ("5", "5,00 MAD"), ("999.9", "999,90 MAD"), ("1000", "1 000,00 MAD"),
        ("100000", "100 000,00 MAD"), ("-250.5", "-250,50 MAD")])
    def test_french_grouping(self, amount: str, text: str) -> None:
        assert format_money(Decimal(amount), "fr") == text


class TestErrors:
    def test_a_missing_variable_names_the_field(self) -> None:
        with pytest.raises(InvalidInput) as err:
            render(FR, {"amount": "5000.00"})
        assert err.value.field == "variables.wallet"
        assert "wallet" in err.value.detail and "first_due_date" in err.value.detail

    @pytest.mark.parametrize(("name", "value"), [
        ("amount", 5000.0), ("amount", "5,000"), ("amount", "1.234"),
        ("first_due_date", "12/04/2027"), ("wallet", "12")])
    def test_a_malformed_variable_names_the_field(self, name: str, value: object) -> None:
        with pytest.raises(InvalidInput) as err:
            render(FR, {**VALUES, name: value})
        assert err.value.field == f"variables.{name}"

    def test_unknown_template_and_missing_language(self) -> None:
        templates = {("loan_disbursed", "fr"): FR}
        with pytest.raises(NotFound) as err:
            pick(templates, "nope", "fr")
        assert err.value.field == "name"
        with pytest.raises(NotFound) as err:
            pick(templates, "loan_disbursed", "ar")
        assert err.value.field == "language"
        with pytest.raises(InvalidInput):
            pick(templates, "loan_disbursed", "en")


class TestNewVersion:
    def test_a_valid_version_passes(self) -> None:
        validate_new_version("refund_issued", "fr", "Remboursé: {amount}", {"amount": "money"},
                             "keep")

    @pytest.mark.parametrize(("name", "language", "body", "variables", "policy", "field"), [
        ("Bad Name", "fr", "x", {}, "keep", "name"),
        ("ok", "en", "x", {}, "keep", "language"),
        ("ok", "fr", "  ", {}, "keep", "body"),
        ("ok", "fr", "x {amount}", {}, "keep", "body"),
        ("ok", "fr", "x {Amount}", {}, "keep", "body"),
        ("ok", "fr", "x {amount}", {"amount": "float"}, "keep", "variables.amount"),
        ("ok", "fr", "x", {}, "drop", "policy"),
    ])
    def test_bad_versions_name_the_field(self, name: str, language: str, body: str,
                                         variables: dict[str, str], policy: str,
                                         field: str) -> None:
        with pytest.raises(InvalidInput) as err:
            validate_new_version(name, language, body, variables, policy)
        assert err.value.field == field
