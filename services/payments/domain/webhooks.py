"""Standard Webhooks signatures: HMAC-SHA256 over ``{id}.{timestamp}.{raw body}``.

Pure functions: the callback route checks the headers with :func:`verify`
before it parses the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from shared.errors import DomainError

TOLERANCE_S = 300


class SignatureRejected(DomainError):
    title = "Webhook signature rejected"
    code = "webhook_rejected"


def secret_bytes(secret: str) -> bytes:
    """``whsec_<base64>`` secrets decode to their key; anything else is used as is.

    The base64 may come without its ``=`` padding (as some dashboards show secrets);
    like the Standard Webhooks reference library, it decodes to the same key.
    """
    if secret.startswith("whsec_"):
        encoded = secret.removeprefix("whsec_")
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secrets: list[str], msg_id: str | None, timestamp: str | None,
           signature: str | None, body: bytes, now: float,
           tolerance_s: int = TOLERANCE_S) -> int:
    """Check the headers; return the timestamp. Raises :class:`SignatureRejected`.

    Several secrets (key rotation) and several space-separated signatures are
    accepted; comparison is constant-time.
    """
    if not msg_id or not timestamp or not signature:
        missing = [n for n, v in (("webhook-id", msg_id), ("webhook-timestamp", timestamp),
                                  ("webhook-signature", signature)) if not v]
        raise SignatureRejected(f"missing header(s): {', '.join(missing)}", field=missing[0])
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureRejected("webhook-timestamp must be Unix seconds",
                                field="webhook-timestamp") from None
    if abs(now - ts) > tolerance_s:
        raise SignatureRejected(
            f"webhook-timestamp is {int(now - ts)} s away from now (tolerance {tolerance_s} s)",
            field="webhook-timestamp")
    offered = [s for s in signature.split(" ") if s.startswith("v1,")]
    ok = False
    for secret in secrets:
        expected = sign(secret, msg_id, ts, body)
        for candidate in offered:
            ok |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not ok:
        raise SignatureRejected("the webhook signature does not match", field="webhook-signature")
    return ts
