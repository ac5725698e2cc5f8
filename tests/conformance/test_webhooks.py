"""Webhook signatures: services/payments/domain/webhooks.py against ``standardwebhooks``.

Both directions: what Noria signs, the reference library verifies; what the library
signs, Noria verifies; and both refuse a tampered body, a wrong secret and a stale or
future timestamp.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from services.payments.domain import webhooks as ours

SECRET = "whsec_" + base64.b64encode(b"noria-conformance-secret-32bytes").decode()
OTHER = "whsec_" + base64.b64encode(b"another-secret-of-thirty-two-by!").decode()
BODY = json.dumps({"transactionReference": "TX-1", "status": "SUCCESSFUL",
                   "amount": "1500.00"}).encode()


def headers(msg_id: str, ts: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def their_sign(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    return Webhook(secret).sign(msg_id, dt.datetime.fromtimestamp(ts, dt.UTC), body)


def test_we_sign_they_verify() -> None:
    now = int(time.time())
    sig = ours.sign(SECRET, "msg_1", now, BODY)
    assert Webhook(SECRET).verify(BODY, headers("msg_1", now, sig)) == json.loads(BODY)


def test_they_sign_we_verify() -> None:
    now = int(time.time())
    sig = their_sign(SECRET, "msg_2", now, BODY)
    assert ours.verify([SECRET], "msg_2", str(now), sig, BODY, now=now) == now


@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=1, max_size=64), msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,24}",
                                                                     fullmatch=True),
       ts=st.integers(min_value=0, max_value=2**33), body=st.binary(max_size=512))
def test_signatures_are_byte_identical(key: bytes, msg_id: str, ts: int, body: bytes) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    assert ours.sign(secret, msg_id, ts, body) == their_sign(secret, msg_id, ts, body)


@pytest.mark.parametrize("key", [bytes(range(31)), bytes(range(32)), bytes(range(24))],
                         ids=["31-byte", "32-byte", "24-byte"])
def test_a_secret_written_without_base64_padding_is_the_same_key(key: bytes) -> None:
    # The reference library accepts `whsec_` secrets with their `=` padding stripped
    # (as some dashboards show them); Noria must derive the same key, not crash.
    padded = "whsec_" + base64.b64encode(key).decode()
    unpadded = padded.rstrip("=")
    now = int(time.time())
    theirs = their_sign(unpadded, "msg_pad", now, BODY)
    assert ours.sign(unpadded, "msg_pad", now, BODY) == theirs
    assert ours.sign(padded, "msg_pad", now, BODY) == theirs
    assert ours.verify([unpadded], "msg_pad", str(now), theirs, BODY, now=now) == now
    Webhook(padded).verify(BODY, headers("msg_pad", now, ours.sign(unpadded, "msg_pad", now,
                                                                   BODY)))


def test_several_signatures_and_rotated_secrets_are_accepted_by_both() -> None:
    now = int(time.time())
    old, new = their_sign(OTHER, "msg_3", now, BODY), their_sign(SECRET, "msg_3", now, BODY)
    header = f"{old} {new}"
    assert ours.verify([SECRET], "msg_3", str(now), header, BODY, now=now) == now
    Webhook(SECRET).verify(BODY, headers("msg_3", now, header))
    assert ours.verify([OTHER, SECRET], "msg_3", str(now), new, BODY, now=now) == now


@pytest.mark.parametrize("case", ["tampered body", "wrong secret", "other message id",
                                  "stale timestamp", "future timestamp", "no signature"])
def test_both_refuse(case: str) -> None:
    now = int(time.time())
    msg_id, ts, body, secret = "msg_4", now, BODY, SECRET
    if case == "stale timestamp":
        ts = now - 301
    if case == "future timestamp":
        ts = now + 301
    sig = ours.sign(secret, msg_id, ts, body)
    assert sig == their_sign(secret, msg_id, ts, body)
    verify_with, check_id = [SECRET], msg_id
    if case == "tampered body":
        body = body.replace(b"1500.00", b"9500.00")
    elif case == "wrong secret":
        verify_with = [OTHER]
    elif case == "other message id":
        check_id = "msg_5"
    elif case == "no signature":
        sig = ""

    with pytest.raises(ours.SignatureRejected):
        ours.verify(verify_with, check_id, str(ts), sig, body, now=now)
    with pytest.raises(WebhookVerificationError):
        Webhook(verify_with[0]).verify(body, headers(check_id, ts, sig))


def test_the_tolerance_is_five_minutes_in_both() -> None:
    now = int(time.time())
    ts = now - 240  # well inside both windows, whatever second the library reads its clock
    sig = ours.sign(SECRET, "msg_6", ts, BODY)
    assert ours.verify([SECRET], "msg_6", str(ts), sig, BODY, now=now) == ts
    Webhook(SECRET).verify(BODY, headers("msg_6", ts, sig))
    assert ours.TOLERANCE_S == 300
