"""GSM 03.38: services/notifications/domain/encoding.py against the ``gsm0338`` codec.

The basic and extension tables, code by code; encoding and decoding of any text over
the alphabet (hypothesis); segmenting, checked by encoding every part with gsm0338;
and the 160/153 septet limits checked by packing septets with aiosmpplib's packer
(140 octets per SMS, the concatenation header included).

One deliberate difference, documented in encoding.py: code 0x09 (``Ç``) is never
emitted, so ``Ç`` and ``ç`` count as outside GSM-7 for Noria.
"""

from __future__ import annotations

import math

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import pytest
from aiosmpplib import GSM7BitPackedCodec
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifications.domain import encoding as enc

REF = "gsm03.38"
CEDILLA = "Ç"
BASIC = [ch for code, ch in enumerate(enc.GSM7_BASIC) if code not in (enc.ESCAPE, 0x09)]
EXTENSION = list(enc.GSM7_EXTENSION)
ALPHABET = BASIC + EXTENSION
gsm_text = st.text(alphabet=st.sampled_from(ALPHABET), max_size=700)


def ref_encode(text: str) -> bytes:
    return text.encode(REF)


def ref_decode(data: bytes) -> str:
    return data.decode(REF)


@pytest.mark.parametrize("code", [c for c in range(128) if c != enc.ESCAPE])
def test_basic_table_code_by_code(code: int) -> None:
    theirs = ref_decode(bytes([code]))
    assert enc.from_gsm7_bytes(bytes([code])) == theirs
    if code == 0x09:
        assert theirs == CEDILLA and not enc.is_gsm7(CEDILLA)  # never emitted (see docstring)
        return
    assert enc.to_gsm7_bytes(theirs) == ref_encode(theirs) == bytes([code])
    assert enc.septets(theirs) == 1


@pytest.mark.parametrize("ch", ["€", "[", "]", "{", "}", "~", "^", "\\", "|", "\f"])
def test_extension_table(ch: str) -> None:
    assert enc.to_gsm7_bytes(ch) == ref_encode(ch)
    assert ref_encode(ch)[0] == enc.ESCAPE and len(ref_encode(ch)) == 2
    assert enc.from_gsm7_bytes(ref_encode(ch)) == ch
    assert enc.septets(ch) == 2


def test_both_tables_have_the_same_characters() -> None:
    reference = {ref_decode(bytes([c])) for c in range(128) if c != enc.ESCAPE}
    ours = set(BASIC) | {CEDILLA}
    assert ours == reference
    for ch in EXTENSION:
        assert len(ref_encode(ch)) == 2
    # Nothing else encodes to an escape pair in the reference codec.
    probe = "".join(chr(c) for c in range(0x20, 0x250)) + "€\f"
    escaped = {ch for ch in probe if len(_try_encode(ch)) == 2}
    assert escaped == set(EXTENSION)


def _try_encode(ch: str) -> bytes:
    try:
        return ref_encode(ch)
    except UnicodeEncodeError:
        return b""


@settings(max_examples=300, deadline=None)
@given(gsm_text)
def test_encoding_agrees_with_gsm0338(text: str) -> None:
    ours = enc.to_gsm7_bytes(text)
    assert ours == ref_encode(text)
    assert enc.from_gsm7_bytes(ours) == ref_decode(ours) == text
    assert enc.is_gsm7(text)
    assert enc.gsm7_length(text) == len(ours)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.one_of(st.sampled_from(ALPHABET), st.characters(max_codepoint=0x20FF)),
               max_size=60))
def test_gsm7_membership_agrees_with_gsm0338(text: str) -> None:
    try:
        ref_encode(text)
        theirs = True
    except UnicodeEncodeError:
        theirs = False
    ours = enc.is_gsm7(text)
    if CEDILLA in text or "\x1b" in text:
        # Ç: never emitted (module docstring). U+001B: gsm0338 maps it to the bare escape
        # code, which a handset reads as the start of an extension pair; Noria refuses it.
        assert not ours
    else:
        assert ours == theirs, text


@settings(max_examples=300, deadline=None)
@given(gsm_text)
def test_segments_fit_and_rejoin(text: str) -> None:
    encoded = enc.encode(text)
    assert encoded.encoding == "GSM-7" and not encoded.transliterated
    assert "".join(encoded.parts) == text
    wire = [ref_encode(part) for part in encoded.parts]
    if len(wire) == 1:
        assert len(wire[0]) <= enc.SINGLE_GSM7
    else:
        assert len(ref_encode(text)) > enc.SINGLE_GSM7
        for part, octets in zip(encoded.parts, wire, strict=True):
            assert len(octets) <= enc.PART_GSM7
            assert ref_decode(octets) == part  # no escape pair split across parts
        # A part is cut only when the next character would not fit.
        for part, nxt in zip(encoded.parts, encoded.parts[1:], strict=False):
            assert len(ref_encode(part + nxt[0])) > enc.PART_GSM7
    assert encoded.length == len(ref_encode(text))


@settings(max_examples=200, deadline=None)
@given(gsm_text)
def test_septet_limits_fit_140_octets_when_packed(text: str) -> None:
    packer = GSM7BitPackedCodec()
    encoded = enc.encode(text)
    for part in encoded.parts:
        packed, _ = packer.encode(part)
        septets = len(enc.to_gsm7_bytes(part))
        assert len(packed) == math.ceil(septets * 7 / 8)
        if encoded.segments == 1:
            assert len(packed) <= 140
        else:
            # 6-octet concatenation header + 1 fill bit = 7 septets ahead of the text.
            assert 7 + septets <= 160 and 6 + math.ceil(septets * 7 / 8) <= 140
        unpacked = packer.decode(packed)[0]
        if septets % 8 == 7:  # 7 fill bits read as an extra '@' (3GPP TS 23.038 §6.1.2.3.1)
            assert unpacked == part + "@"
        else:
            assert unpacked == part


@pytest.mark.parametrize("text,segments", [
    ("a" * 160, 1), ("a" * 161, 2), ("€" * 80, 1), ("€" * 81, 2),
    ("a" * 152 + "€" + "a" * 10, 2), ("a" * 306, 2), ("a" * 307, 3),
])
def test_known_boundaries(text: str, segments: int) -> None:
    encoded = enc.encode(text)
    assert encoded.segments == segments
    assert all(len(ref_encode(p)) <= (enc.SINGLE_GSM7 if segments == 1 else enc.PART_GSM7)
               for p in encoded.parts)


def test_an_escape_pair_at_a_part_boundary_moves_to_the_next_part() -> None:
    encoded = enc.encode("a" * 152 + "€" + "a" * 10)
    assert encoded.parts == ("a" * 152, "€" + "a" * 10)
    assert ref_encode(encoded.parts[1])[:2] == b"\x1b\x65"
