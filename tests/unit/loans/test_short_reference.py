"""Short loan references: the check character catches every single-character
substitution and every swap of two neighbours."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.loans.domain.reference import (
    ALPHABET,
    CHECK_ALPHABET,
    LENGTH,
    encode,
    new_reference,
    parse,
)

values = st.integers(min_value=0, max_value=32 ** 8 - 1)


def test_shape_and_round_trip() -> None:
    for _ in range(200):
        ref = new_reference()
        assert len(ref) == LENGTH == 10 and ref[0] == "L"
        assert all(c in ALPHABET for c in ref[1:])   # never * ~ $ = U
        assert parse(ref).reference == ref
        assert parse(ref.lower()).reference == ref
        assert parse(f"{ref[:5]}-{ref[5:]}").reference == ref


def test_worked_example() -> None:
    # 0 -> "00000000", 0 mod 37 = 0 -> check "0"; 37 -> "00000015" (1*32 + 5), 37 mod 37 = 0
    assert encode(0) == "L000000000"
    assert encode(37) == "L000000150"
    assert parse("L00000015O").reference == "L000000150"   # O read as 0
    assert parse("L000000151").outcome == "check_failed"
    assert parse("SAV-123").outcome == "not_a_reference"
    assert parse("6f1c0e5e-3c1a-4d8e-9a39-2b0f3b9c1d11").outcome == "not_a_reference"


@given(values, st.integers(min_value=1, max_value=9), st.sampled_from(CHECK_ALPHABET))
def test_every_substitution_is_caught(value: int, position: int, char: str) -> None:
    ref = encode(value)
    if position < 9 and char not in ALPHABET:
        char = ALPHABET[CHECK_ALPHABET.index(char) % 32]
    if ref[position] == char:
        return
    typed = ref[:position] + char + ref[position + 1:]
    assert parse(typed).outcome != "valid", (ref, typed)


@given(values, st.integers(min_value=1, max_value=8))
def test_every_adjacent_transposition_is_caught(value: int, position: int) -> None:
    ref = encode(value)
    a, b = ref[position], ref[position + 1]
    if a == b:
        return
    typed = ref[:position] + b + a + ref[position + 2:]
    assert parse(typed).outcome != "valid", (ref, typed)


def test_exhaustively_on_some_references() -> None:
    """Every substitution and swap of 300 references (not only the sampled ones)."""
    for _ in range(300):
        ref = new_reference()
        for pos in range(1, 10):
            for c in (CHECK_ALPHABET if pos == 9 else ALPHABET):
                if c != ref[pos]:
                    assert parse(ref[:pos] + c + ref[pos + 1:]).outcome != "valid"
        for pos in range(1, 9):
            if ref[pos] != ref[pos + 1]:
                typed = ref[:pos] + ref[pos + 1] + ref[pos] + ref[pos + 2:]
                assert parse(typed).outcome != "valid"
