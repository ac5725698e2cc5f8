"""What the integration rigs share: a reserved free port, an ASGI app served under uvicorn in
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

# Ports handed out by free_port, each held by a bound (not listening) socket until
# serve() listens on it.
_reserved: dict[int, socket.socket] = {}


def free_port() -> int:
    """A port nothing else can take before :func:`serve` listens on it. A port picked and
    released at once could be taken meanwhile (another worker's pick, an outgoing
    connection's ephemeral port): a fresh-clone run once lost a whole rig that way. The
    socket bound here stays open (``SO_REUSEADDR``, not listening, so the server's own
    bind still succeeds) and keeps the port out of the kernel's hands until then."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    _reserved[port] = s
    return port


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
    reservation = _reserved.pop(port, None)
    if reservation is not None:
        reservation.close()  # the server listens on the port now
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
