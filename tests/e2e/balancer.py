"""A TCP load balancer in front of a service's replicas, as a deployment would have.

What calls a service from outside the test — the mobile-money simulator's callbacks
to payments — goes through it: each connection goes to the next replica in turn, and
a replica that refuses the connection (killed, restarting) is skipped for the next.
It runs in a thread of its own with its own event loop, so the load the test drives
in its own loop does not slow it down. ``backends`` may change while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import Counter


class Balancer:
    def __init__(self, port: int, backends: list[int], host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.backends = list(backends)
        self.connections: Counter[int] = Counter()
        """Connections handed to each backend port."""
        self.refused: Counter[int] = Counter()
        self._turn = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._main, name=f"balancer-{self.port}",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._thread = None

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, reuse_address=True))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _handle(self, client_r: asyncio.StreamReader,
                      client_w: asyncio.StreamWriter) -> None:
        backends = list(self.backends)
        start = next(self._turn)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for i in range(len(backends)):
            port = backends[(start + i) % len(backends)]
            try:
                upstream = await asyncio.wait_for(
                    asyncio.open_connection(self.host, port), 2.0)
            except (OSError, TimeoutError):
                self.refused[port] += 1
                continue
            self.connections[port] += 1
            break
        if upstream is None:
            client_w.close()
            return
        up_r, up_w = upstream
        await asyncio.gather(self._pipe(client_r, up_w), self._pipe(up_r, client_w))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()
