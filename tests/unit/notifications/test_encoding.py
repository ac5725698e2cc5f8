"""GSM-7 or UCS-2, and how many parts a text costs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.domain.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    encode,
    from_gsm7_bytes,
    gsm7_length,
    is_gsm7,
    segments_for,
    split_parts,
    to_gsm7_bytes,
    ucs2_length,
)

EXTENSION = "^{}\\[~]|€"


class TestGsm7:
    @pytest.mark.parametrize(("length", "segments"), [
        (1, 1), (159, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)])
    def test_boundaries_160_then_153_per_part(self, length: int, segments: int) -> None:
        e = encode("a" * length)
        assert (e.encoding, e.segments, e.length) == ("GSM-7", segments, length)
        assert all(gsm7_length(p) <= (160 if segments == 1 else 153) for p in e.parts)
        assert "".join(e.parts) == "a" * length

    @pytest.mark.parametrize("ch", list(EXTENSION))
    def test_extension_characters_cost_two_septets(self, ch: str) -> None:
        assert encode(ch).length == 2
        assert encode(ch * 80).segments == 1  # 160 septets
        assert encode(ch * 81).segments == 2  # 162 septets
        assert encode("a" * 159 + ch).segments == 2  # 161 septets

    def test_an_escape_pair_is_never_split_across_parts(self) -> None:
        text = "a" * 152 + "€" + "b" * 10  # the euro would straddle septets 153/154
        parts = encode(text).parts
        assert parts[0] == "a" * 152
        assert parts[1].startswith("€")
        assert all(gsm7_length(p) <= 153 for p in parts)

    def test_french_accents_that_gsm7_has_stay_gsm7(self) -> None:
        text = "Le prêt n'est pas là" .replace("ê", "e") + " é è à ù ì ò É Ü ü ñ"
        e = encode(text, "keep")
        assert e.encoding == "GSM-7" and e.text == text and not e.transliterated

    def test_dollar_and_currency_sign_are_in_the_basic_table(self) -> None:
        assert gsm7_length("$£¥¤@") == 5

    def test_wire_round_trip(self) -> None:
        text = "Noria: 5 000,00 MAD € [ok] à l'échéance"
        raw = to_gsm7_bytes(text)
        assert raw.count(0x1B) == 3  # € [ ]
        assert from_gsm7_bytes(raw) == text

    @given(st.text(alphabet=[c for c in GSM7_BASIC if c not in "\x1bÇ"] + list(GSM7_EXTENSION),
                   max_size=600))
    def test_parts_reassemble_and_respect_the_limits(self, text: str) -> None:
        e = encode(text)
        assert e.encoding == "GSM-7"
        assert "".join(e.parts) == text
        limit = 160 if e.segments == 1 else 153
        assert all(gsm7_length(p) <= limit for p in e.parts)
        assert e.segments >= segments_for(gsm7_length(text), "GSM-7") or not text


class TestUcs2:
    @pytest.mark.parametrize(("length", "segments"), [
        (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
    def test_boundaries_70_then_67_per_part(self, length: int, segments: int) -> None:
        e = encode("ب" * length)
        assert (e.encoding, e.segments, e.length) == ("UCS-2", segments, length)
        assert all(ucs2_length(p) <= (70 if segments == 1 else 67) for p in e.parts)

    def test_any_arabic_character_makes_the_whole_message_ucs2(self) -> None:
        e = encode("a" * 100 + "م")
        assert e.encoding == "UCS-2"
        assert e.segments == 2  # 101 units: two parts, where GSM-7 would have needed one

    def test_ucs2_counts_utf16_code_units_and_keeps_surrogate_pairs_whole(self) -> None:
        assert ucs2_length("😀") == 2
        assert encode("😀" * 35).segments == 1  # 70 units
        e = encode("a" * 66 + "😀" + "b" * 10)  # the emoji would straddle units 67/68
        assert e.segments == 2
        assert e.parts[0] == "a" * 66
        assert e.parts[1].startswith("😀")

    @given(st.text(alphabet=st.sampled_from([*"abcé€مرحبا ", "😀", "ê"]), max_size=300))
    def test_any_text_reassembles_within_the_limits(self, text: str) -> None:
        e = encode(text, "keep")
        assert "".join(e.parts) == e.text == text
        if e.encoding == "UCS-2":
            limit = 70 if e.segments == 1 else 67
            assert all(ucs2_length(p) <= limit for p in e.parts)
            assert e.length == len(text.encode("utf-16-be")) // 2
        else:
            assert all(gsm7_length(p) <= (160 if e.segments == 1 else 153) for p in e.parts)

    def test_mixed_french_and_arabic_keeps_the_accents(self) -> None:
        text = "Prêt reçu / تم التحويل"
        e = encode(text)  # transliterating would not avoid UCS-2, so nothing is changed
        assert e.encoding == "UCS-2" and e.text == text and not e.transliterated


class TestFrenchPolicy:
    def test_a_single_circumflex_would_triple_the_cost_of_a_150_character_message(self) -> None:
        text = "Votre prêt " + "x" * 139  # 150 characters
        kept = encode(text, "keep")
        assert (kept.encoding, kept.segments) == ("UCS-2", 3)
        plain = encode(text, "transliterate")
        assert (plain.encoding, plain.segments) == ("GSM-7", 1)
        assert plain.text.startswith("Votre pret ") and plain.transliterated

    @pytest.mark.parametrize(("before", "after"), [
        ("prêt", "pret"), ("âge", "age"), ("île", "ile"), ("hôtel", "hotel"), ("dû", "du"),
        ("Noël", "Noel"), ("naïf", "naif"), ("cœur", "coeur"), ("reçu", "recu"),
        ("FRANÇAIS", "FRANCAIS"), ("À payer", "A payer"), ("l\u2019échéance", "l'échéance"),
        ("5\u00a0000", "5 000"), ("«oui»", '"oui"')])
    def test_transliteration_of_french_characters_outside_gsm7(self, before: str,
                                                               after: str) -> None:
        e = encode(before)
        assert e.text == after and e.encoding == "GSM-7"

    def test_default_policy_is_transliterate(self) -> None:
        assert encode("prêt").text == "pret"

    def test_unknown_policy_is_refused(self) -> None:
        with pytest.raises(ValueError):
            encode("x", "drop")  # type: ignore[arg-type]


class TestCedilla:
    """0x09 is drawn Ç in the 3GPP table but mapped to ç by Unicode: Noria never sends it."""

    def test_neither_cedilla_counts_as_gsm7(self) -> None:
        assert not is_gsm7("ç") and not is_gsm7("Ç")
        with pytest.raises(ValueError):
            to_gsm7_bytes("ç")

    def test_keep_policy_sends_the_cedilla_as_ucs2(self) -> None:
        e = encode("Montant reçu", "keep")
        assert e.encoding == "UCS-2" and e.text == "Montant reçu"

    def test_transliterate_policy_writes_c(self) -> None:
        assert encode("Montant reçu").text == "Montant recu"

    def test_a_received_0x09_decodes_as_the_printed_table_says(self) -> None:
        assert from_gsm7_bytes(bytes([0x09])) == "Ç"

    def test_no_encoded_message_contains_0x09(self) -> None:
        e = encode("Ça reçu ç Ç")
        assert 0x09 not in to_gsm7_bytes(e.text)


def test_split_parts_of_an_empty_text_is_one_empty_part() -> None:
    assert split_parts("", "GSM-7") == [""]
