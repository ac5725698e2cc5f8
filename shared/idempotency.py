"""``Idempotency-Key`` for writes that move money (Fineract/Mojaloop rules).

The first request with a key stores a SHA-256 of its body, runs, and stores its
response in the same transaction as its effect. The same key and body returns
that response again; the same key with a different body is refused; a request
whose twin is still running gets 409.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import orjson

from shared.errors import IdempotencyMismatch, InFlight, InvalidInput
from shared.uow import UnitOfWork


def request_hash(body: Any) -> str:
    try:
        data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        # A raw body orjson cannot encode (an integer beyond 64 bits, a lone surrogate):
        # still hashed, so the request goes on to be refused by validation, not a 500.
        data = json.dumps(body, sort_keys=True, default=repr).encode()
    return hashlib.sha256(data).hexdigest()


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise InvalidInput("the Idempotency-Key header is required", field="Idempotency-Key")
    if len(key) > 200:
        raise InvalidInput("Idempotency-Key is at most 200 characters", field="Idempotency-Key")
    return key.strip()


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any


async def begin(uow: UnitOfWork, scope: str, key: str, body: Any) -> Replay | None:
    """Claim ``key`` inside ``uow``; return the stored response if it was already done.

    The claim row is written in the caller's transaction: if the request fails and
    rolls back, the key is free again.
    """
    digest = request_hash(body)
    inserted = await uow.conn.fetchval(
        "INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING 1", scope, key, digest,
    )
    if inserted:
        return None
    row = await uow.conn.fetchrow(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys"
        " WHERE scope = $1 AND key = $2", scope, key,
    )
    if row is None:  # the other request rolled back between our insert and select
        raise InFlight("a request with this Idempotency-Key is in progress; retry")
    if row["request_hash"] != digest:
        raise IdempotencyMismatch(
            "this Idempotency-Key was used with a different request body",
            field="Idempotency-Key",
        )
    if row["response_status"] is None:
        raise InFlight("a request with this Idempotency-Key is in progress; retry")
    return Replay(row["response_status"], row["response_body"])


async def complete(uow: UnitOfWork, scope: str, key: str, status: int, body: Any) -> None:
    await uow.conn.execute(
        "UPDATE idempotency_keys SET response_status = $3, response_body = $4,"
        " completed_at = now() WHERE scope = $1 AND key = $2", scope, key, status, body,
    )
