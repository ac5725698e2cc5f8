"""The tests' TOTP against RFC 6238's test vectors (Appendix B: 8 digits, 30 s steps)."""

from __future__ import annotations

import pytest

from tests.identity.totp import hotp, totp

SHA1_KEY = b"12345678901234567890"
SHA256_KEY = b"12345678901234567890123456789012"
SHA512_KEY = b"1234567890123456789012345678901234567890123456789012345678901234"


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
])
def test_rfc_6238_vectors(at: int, sha1: str, sha256: str, sha512: str) -> None:
    assert totp(SHA1_KEY, at, digits=8) == sha1
    assert totp(SHA256_KEY, at, digits=8, algorithm="HmacSHA256") == sha256
    assert totp(SHA512_KEY, at, digits=8, algorithm="HmacSHA512") == sha512


def test_rfc_4226_vectors_and_six_digits() -> None:
    """HOTP's own vectors (RFC 4226, Appendix D), six digits as Keycloak's policy."""
    expected = ["755224", "287082", "359152", "969429", "338314",
                "254676", "287922", "162583", "399871", "520489"]
    assert [hotp(SHA1_KEY, counter) for counter in range(10)] == expected
    assert totp(SHA1_KEY, 59) == "287082"
