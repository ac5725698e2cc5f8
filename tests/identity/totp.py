"""TOTP (RFC 6238 over RFC 4226's HOTP), as an authenticator app computes it: what an
operator types on Keycloak's OTP page."""

from __future__ import annotations

import hashlib
import hmac
import struct
import time

DIGESTS = {"HmacSHA1": hashlib.sha1, "HmacSHA256": hashlib.sha256,
           "HmacSHA512": hashlib.sha512}


def hotp(key: bytes, counter: int, digits: int = 6, algorithm: str = "HmacSHA1") -> str:
    mac = hmac.new(key, struct.pack(">Q", counter), DIGESTS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    (code,) = struct.unpack(">I", mac[offset:offset + 4])
    return str((code & 0x7FFFFFFF) % 10**digits).zfill(digits)


def totp(key: bytes, at: float | None = None, *, period: int = 30, digits: int = 6,
         algorithm: str = "HmacSHA1") -> str:
    step = int((time.time() if at is None else at) // period)
    return hotp(key, step, digits, algorithm)
