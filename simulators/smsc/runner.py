"""Run the simulator: SMPP server and HTTP app in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn

from simulators.smsc.app import create_app
from simulators.smsc.server import Smsc


@dataclass
class Running:
    smsc: Smsc
    smpp_port: int
    http_port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running(host: str = "127.0.0.1", smpp_port: int = 0, http_port: int = 0
                  ) -> AsyncIterator[Running]:
    """Start the simulator in this event loop (port 0 = a free port)."""
    smsc = Smsc()
    bound = await smsc.start(host, smpp_port)
    http_port = http_port or free_port(host)
    config = uvicorn.Config(create_app(smsc), host=host, port=http_port, log_level="warning",
                            lifespan="off", access_log=False,
                            timeout_keep_alive=75)  # longer than any client's idle limit
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # raises why it could not start
        await asyncio.sleep(0.02)
    try:
        yield Running(smsc, bound, http_port)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        await smsc.stop()
