"""Dead letters for operators: list them with their reason, replay them (audited).

A replay feeds the stored record through the consumer's normal path — inbox,
handler, retries — so a message that already took effect changes nothing.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from shared.auth import Principal, require
from shared.errors import NotFound
from shared.inbox import DeadLetterFailed, InboxConsumer, Outcome, RawMessage

# dead_letters.id is a bigint: a larger id in the path is a 422, not a database error.
DeadLetterId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class DeadLetterOut(BaseModel):
    id: int
    consumer: str
    topic: str
    partition: int
    offset: int
    key: str | None
    message_type: str | None
    reason: str
    error: str
    created_at: str
    replayed_at: str | None
    replay_count: int
    value_preview: str


class ReplayRecordOut(BaseModel):
    """One audited replay: who replayed which dead letter, when, and what came of it."""

    id: int
    dead_letter_id: int
    consumer: str
    topic: str
    message_type: str | None
    replayed_by: str
    replayed_at: str
    outcome: str
    detail: str | None


class ReplayRecords(BaseModel):
    items: list[ReplayRecordOut]
    next_before: int | None


class ReplayResult(BaseModel):
    id: int
    outcome: str
    error: str | None = None


def _out(row: Any) -> DeadLetterOut:
    raw: bytes = row["value"]
    try:
        preview = raw[:500].decode()
    except UnicodeDecodeError:
        preview = "base64:" + base64.b64encode(raw[:300]).decode()
    return DeadLetterOut(
        id=row["id"], consumer=row["consumer"], topic=row["topic"],
        partition=row["kafka_partition"], offset=row["kafka_offset"], key=row["message_key"],
        message_type=row["message_type"], reason=row["reason"], error=row["error"],
        created_at=row["created_at"].isoformat(),
        replayed_at=row["replayed_at"].isoformat() if row["replayed_at"] else None,
        replay_count=row["replay_count"], value_preview=preview,
    )


async def replay_dead_letter(
    consumers: dict[str, InboxConsumer], dead_letter_id: int, operator: str
) -> ReplayResult:
    any_consumer = next(iter(consumers.values()))
    async with any_consumer.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM dead_letters WHERE id = $1", dead_letter_id)
    if row is None:
        raise NotFound(f"no dead letter {dead_letter_id}", field="id")
    consumer = consumers.get(row["consumer"])
    if consumer is None:
        raise NotFound(f"consumer group {row['consumer']} is not running in this service")
    message = RawMessage(
        topic=row["topic"], partition=row["kafka_partition"], offset=row["kafka_offset"],
        key=row["message_key"].encode() if row["message_key"] else None, value=row["value"],
        headers=[(k, v.encode()) for k, v in row["headers"]],
    )
    try:
        outcome: Outcome = await consumer.process(message)
    except DeadLetterFailed as exc:
        # It failed again and could not be re-sent to the dead-letter topic: it stays a
        # pending dead letter here, so nothing is lost; the replay says so.
        outcome = Outcome("dead_letter", str(exc))
    ok = outcome.status in ("applied", "duplicate", "ignored")
    async with consumer.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO dead_letter_replays (dead_letter_id, replayed_by, outcome, detail)"
            " VALUES ($1, $2, $3, $4)", dead_letter_id, operator, outcome.status, outcome.error,
        )
        await conn.execute(
            "UPDATE dead_letters SET replay_count = replay_count + 1,"
            " replayed_at = CASE WHEN $2 THEN now() ELSE replayed_at END WHERE id = $1",
            dead_letter_id, ok,
        )
    return ReplayResult(id=dead_letter_id, outcome=outcome.status, error=outcome.error)


def dlq_router() -> APIRouter:
    router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])

    @router.get("", response_model=list[DeadLetterOut])
    async def list_dead_letters(
        request: Request,
        principal: Annotated[Principal, require("dlq:read")],
        pending_only: Annotated[bool, Query()] = True,
        key: Annotated[str | None, Query(
            max_length=500, description="Only the dead letters of this message key")] = None,
        after: Annotated[int, Query(
            ge=0, le=2**63 - 1,
            description="Keyset cursor: only ids after this one (the last id of the "
                        "previous page; a page shorter than ``limit`` is the last)")] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[DeadLetterOut]:
        """The dead letters, oldest first, ``limit`` at a time."""
        pool = request.app.state.runtime.pool
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM dead_letters WHERE ($1 = false OR replayed_at IS NULL)"
                " AND ($2::text IS NULL OR message_key = $2)"
                " AND id > $3 ORDER BY id LIMIT $4",
                pending_only, key, after, limit,
            )
        return [_out(r) for r in rows]

    @router.get("/replays", response_model=ReplayRecords)
    async def list_replays(
        request: Request,
        principal: Annotated[Principal, require("dlq:read")],
        dead_letter_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
        before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> ReplayRecords:
        """The replay audit, newest first; ``next_before`` pages back."""
        pool = request.app.state.runtime.pool
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT r.id, r.dead_letter_id, r.replayed_by, r.replayed_at, r.outcome,"
                " r.detail, d.consumer, d.topic, d.message_type"
                " FROM dead_letter_replays r JOIN dead_letters d ON d.id = r.dead_letter_id"
                " WHERE ($1::bigint IS NULL OR r.dead_letter_id = $1)"
                " AND ($2::bigint IS NULL OR r.id < $2) ORDER BY r.id DESC LIMIT $3",
                dead_letter_id, before, limit,
            )
        items = [ReplayRecordOut(
            id=r["id"], dead_letter_id=r["dead_letter_id"], consumer=r["consumer"],
            topic=r["topic"], message_type=r["message_type"], replayed_by=r["replayed_by"],
            replayed_at=r["replayed_at"].isoformat(), outcome=r["outcome"], detail=r["detail"],
        ) for r in rows]
        return ReplayRecords(items=items,
                             next_before=items[-1].id if len(items) == limit else None)

    @router.post("/{dead_letter_id}/replay", response_model=ReplayResult)
    async def replay_one(
        request: Request, dead_letter_id: DeadLetterId,
        principal: Annotated[Principal, require("dlq:replay")],
    ) -> ReplayResult:
        return await replay_dead_letter(
            request.app.state.runtime.consumers, dead_letter_id, principal.sub
        )

    @router.post("/replay-all", response_model=list[ReplayResult])
    async def replay_all(
        request: Request, principal: Annotated[Principal, require("dlq:replay")],
    ) -> list[ReplayResult]:
        runtime = request.app.state.runtime
        async with runtime.pool.acquire() as conn:
            ids = [r["id"] for r in await conn.fetch(
                "SELECT id FROM dead_letters WHERE replayed_at IS NULL ORDER BY id LIMIT 1000")]
        return [await replay_dead_letter(runtime.consumers, i, principal.sub) for i in ids]

    return router
