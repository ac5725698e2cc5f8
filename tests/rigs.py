"""What the integration rigs share: a free port, an ASGI app served under uvicorn in
the test's event loop, a fresh wallet number."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from shared.app import server_options


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: Any, port: int) -> AsyncIterator[uvicorn.Server]:
    """``app`` answering on ``port`` (its lifespan run) until the block ends."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                            timeout_graceful_shutdown=1, **server_options())
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield server
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 10)
        except (TimeoutError, asyncio.CancelledError):
            server.force_exit = True
            task.cancel()


def new_msisdn() -> str:
    return "+2126" + str(uuid.uuid4().int)[:8]
