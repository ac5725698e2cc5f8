"""Canonical identifiers: one value however the digits, case and separators are written."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import InvalidInput
from shared.identifiers import (
    MAX_RAW_LENGTH,
    ascii_digits,
    canonical_moroccan_mobile,
    canonical_national_id,
    canonical_phone,
    canonical_reference,
)

# The zero of every run of Unicode decimal digits (ASCII, Arabic-Indic, extended
# Arabic-Indic, Devanagari, full-width, mathematical…), each followed by one..nine.
ZEROS = [cp for cp in range(sys.maxunicode + 1) if unicodedata.decimal(chr(cp), None) == 0]
ARABIC_INDIC, EXTENDED_ARABIC_INDIC, FULL_WIDTH = 0x0660, 0x06F0, 0xFF10


def render(digits: str, zeros: list[int]) -> str:
    """``digits`` (ASCII) with the i-th digit written in the script of ``zeros[i]``."""
    return "".join(chr(z + int(d)) for d, z in zip(digits, zeros, strict=True))


def in_script(text: str, zero: int) -> str:
    """``text`` with every ASCII digit written in the script of ``zero``."""
    return "".join(chr(zero + int(ch)) if ch.isdigit() else ch for ch in text)


def test_every_script_is_known() -> None:
    assert {0x30, ARABIC_INDIC, EXTENDED_ARABIC_INDIC, FULL_WIDTH, 0x0966} <= set(ZEROS)
    assert all(unicodedata.decimal(chr(z + d)) == d for z in ZEROS for d in range(10))


def fw(text: str) -> str:
    """Every printable ASCII character as its full-width form (U+FF01-FF5E)."""
    return "".join(chr(ord(ch) - 0x21 + 0xFF01) if "!" <= ch <= "~" else ch for ch in text)


AR, EXT, DEV = ARABIC_INDIC, EXTENDED_ARABIC_INDIC, 0x0966
EMOJI = "\U0001F600"
CYRILLIC_IE, GREEK_BETA = "\u0415", "\u0392"
ARABIC_BEH, ARABIC_YEH = "\u0628", "\u064A"


def mixed(digits: str) -> str:
    """Digit i in ASCII, Arabic-Indic, extended Arabic-Indic, full-width, Devanagari…"""
    cycle = [0x30, AR, EXT, FULL_WIDTH, DEV]
    return render(digits, [cycle[i % len(cycle)] for i in range(len(digits))])


@pytest.mark.parametrize("raw", [
    "BE123456", "be123456", "BE 123 456", "be-123-456", "BE.123.456", "  BE123456 ",
    "BE" + in_script("123456", AR), "BE" + in_script("123456", EXT), fw("BE123456"),
    fw("be123456"), "BE" + mixed("123456"),
    "BE\u2011123\u2013456",      # non-breaking hyphen, en dash
    "BE\u00a0123\u202f456",      # no-break spaces
    "\u200fBE" + in_script("123456", AR) + "\u200e",  # bidi marks copied around digits
])
def test_cin_spellings_are_one_cin(raw: str) -> None:
    assert canonical_national_id(raw) == "BE123456"


@pytest.mark.parametrize("raw", [
    "B" + CYRILLIC_IE + "123456", GREEK_BETA + "E123456",
    "B\u00c9123456", "B" + EMOJI + "123456", EMOJI, "BE12345" + EMOJI,
    ARABIC_BEH + ARABIC_YEH + "123456",
    "B" + "1" * (MAX_RAW_LENGTH + 1),
    "", "   ", "-", "1234567", "ABC12", "BE1234567", "BE12/34",
])
def test_an_absurd_cin_is_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        canonical_national_id(raw, field="national_id")
    assert err.value.field == "national_id"


def test_the_refusal_names_the_offending_character() -> None:
    with pytest.raises(InvalidInput, match=r"U\+0415 CYRILLIC CAPITAL LETTER IE"):
        canonical_national_id("B" + CYRILLIC_IE + "123456")


def test_a_non_string_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        canonical_phone(612345678, field="msisdn")
    assert err.value.field == "msisdn"


@pytest.mark.parametrize("raw", [
    "0612345678", "06 12 34 56 78", "06-12-34-56-78", "06.12.34.56.78", "(+212) 612-345-678",
    "+212612345678", "+212 0612345678", "00212612345678", "212612345678",
    in_script("0612345678", AR), in_script("0612345678", EXT), fw("0612345678"),
    fw("+212612345678"), "+" + in_script("212 612 345 678", AR), mixed("0612345678"),
])
def test_phone_spellings_are_one_e164(raw: str) -> None:
    assert canonical_phone(raw) == "+212612345678"
    assert canonical_moroccan_mobile(raw) == "+212612345678"


def test_foreign_and_landline_numbers_are_e164_but_not_moroccan_mobiles() -> None:
    assert canonical_phone("+33 6 12 34 56 78") == "+33612345678"
    assert canonical_phone("0033612345678") == "+33612345678"
    assert canonical_phone("0522123456") == "+212522123456"
    for raw in ("+33612345678", "0522123456"):
        with pytest.raises(InvalidInput) as err:
            canonical_moroccan_mobile(raw, field="msisdn")
        assert err.value.field == "msisdn"


@pytest.mark.parametrize("raw", [
    "", "+", "06a2345678", "+2126123x5678", "612345678", "061234567", "06123456789",
    "+212 912345678", "+0612345678", "06+12345678", in_script("0612345678", AR) + EMOJI,
    "06" + in_script("12345678", AR) + ARABIC_BEH,
    "+1234", "+1234567890123456", "0" * (MAX_RAW_LENGTH + 1),
])
def test_an_absurd_phone_is_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        canonical_phone(raw, field="phone")
    assert err.value.field == "phone"


@pytest.mark.parametrize(("raw", "canonical"), [
    ("D3B07384-D9A0-4C8B-9F1A-1E2B3C4D5E6F", "d3b07384-d9a0-4c8b-9f1a-1e2b3c4d5e6f"),
    (" loan-" + in_script("123", AR) + " ", "loan-123"), (fw("TX:987"), "tx:987"),
    ("MP240101.1234.A", "mp240101.1234.a"), ("ref\u2013" + in_script("7", AR), "ref-7"),
])
def test_references_fold_case_and_digits(raw: str, canonical: str) -> None:
    assert canonical_reference(raw) == canonical


def test_a_case_sensitive_reference_keeps_its_case() -> None:
    assert canonical_reference("AbC-" + in_script("1", AR), fold_case=False) == "AbC-1"


@pytest.mark.parametrize("raw", ["", "  ", "a b", "r\u00e9f-1", "ref" + EMOJI, "-ref", "ref-",
                                 "x" * 101, "a;b", "a\u200bb"])
def test_an_absurd_reference_is_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        canonical_reference(raw, field="loan_id")
    assert err.value.field == "loan_id"


# ---- properties -----------------------------------------------------------------

scripts = st.sampled_from(ZEROS)
cin_letters = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=2)
cin_digits = st.text("0123456789", min_size=1, max_size=6)
separators = st.sampled_from(["", " ", "-", ".", "\u00a0", "\u2013", "\u200f"])


@given(letters=cin_letters, digits=cin_digits, data=st.data())
def test_any_digit_script_rendering_of_a_cin_is_the_same_cin(
        letters: str, digits: str, data: st.DataObject) -> None:
    zeros = data.draw(st.lists(scripts, min_size=len(digits), max_size=len(digits)))
    lower = data.draw(st.booleans())
    sep = data.draw(separators)
    spelled = (letters.lower() if lower else letters) + sep + render(digits, zeros)
    assert canonical_national_id(spelled) == letters + digits


@given(prefix=st.sampled_from("67"), rest=st.text("0123456789", min_size=8, max_size=8),
       form=st.sampled_from(["0{n}", "+212{n}", "00212{n}", "212{n}", "+212 0{n}"]),
       data=st.data())
def test_any_digit_script_rendering_of_a_phone_is_the_same_phone(
        prefix: str, rest: str, form: str, data: st.DataObject) -> None:
    ascii_form = form.format(n=prefix + rest)
    zeros = data.draw(st.lists(scripts, min_size=len(ascii_form), max_size=len(ascii_form)))
    spelled = "".join(chr(z + int(ch)) if ch.isdigit() else ch
                      for ch, z in zip(ascii_form, zeros, strict=True))
    assert canonical_moroccan_mobile(spelled) == f"+212{prefix}{rest}"


def _idempotent(fn: object, raw: str) -> None:
    assert callable(fn)
    try:
        once = fn(raw)
    except InvalidInput:
        return
    assert fn(once) == once
    assert once.isascii()


@given(st.text(max_size=20))
def test_canonical_forms_are_idempotent_on_any_text(raw: str) -> None:
    for fn in (canonical_national_id, canonical_phone, canonical_moroccan_mobile,
               canonical_reference):
        _idempotent(fn, raw)


@given(letters=cin_letters, digits=cin_digits, zero=scripts)
def test_cin_canonical_form_is_idempotent(letters: str, digits: str, zero: int) -> None:
    once = canonical_national_id(letters.lower() + " " + in_script(digits, zero))
    assert canonical_national_id(once) == once == letters + digits


@given(st.text(alphabet=st.characters(categories=["Nd"]), max_size=20))
def test_every_decimal_digit_becomes_ascii(raw: str) -> None:
    mapped = ascii_digits(raw)
    assert mapped.isascii() and (mapped.isdigit() or mapped == "")
    assert mapped == "".join(str(unicodedata.decimal(ch)) for ch in raw)
