"""A lean keep-alive HTTP/1.1 client for the load generator.

At a few hundred requests a second a general-purpose client costs the load
generator most of a core on this 2-core machine, time taken from the services
it measures. This one keeps up to ``connections`` sockets open and does nothing
but write a request and read one response (``Content-Length`` bodies only,
which is what the services and simulators send).

A pooled connection the server may have closed for idleness (uvicorn: 5 s) is
not reused after ``idle_s``; one that turns out closed before any byte of the
answer was read is replaced once, since the server never saw the request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import orjson

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter, float]


class RawPool:
    def __init__(self, base_url: str, headers: dict[str, str] | None = None,
                 connections: int = 32, idle_s: float = 4.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.size = connections
        self.idle_s = idle_s
        self.free: asyncio.Queue[Connection] = asyncio.Queue()
        self.opened = 0

    async def _open(self) -> Connection:
        self.opened += 1
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            self.opened -= 1
            raise
        return reader, writer, 0.0

    async def _connection(self) -> Connection:
        while not self.free.empty():
            conn = self.free.get_nowait()
            if time.monotonic() - conn[2] < self.idle_s:
                return conn
            self._discard(conn)
        if self.opened < self.size:
            return await self._open()
        while True:
            conn = await self.free.get()
            if time.monotonic() - conn[2] < self.idle_s:
                return conn
            self._discard(conn)
            if self.opened < self.size:
                return await self._open()

    def _discard(self, conn: Connection) -> None:
        conn[1].close()
        self.opened -= 1

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """``(status, body)``; raises OSError/ValueError/IncompleteReadError on a broken
        answer."""
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}"
                + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()))
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        raw = (head + "\r\n").encode("latin-1") + (body or b"")
        for attempt in (1, 2):
            conn = await self._connection()
            reused = conn[2] > 0.0
            reader, writer, _ = conn
            got_bytes = False
            try:
                writer.write(raw)
                first = await reader.readuntil(b"\r\n\r\n")
                got_bytes = True
                lines = first.split(b"\r\n")
                status = int(lines[0].split(b" ", 2)[1])
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                data = await reader.readexactly(length) if length else b""
            except asyncio.CancelledError:
                self._discard(conn)
                raise
            except (OSError, ValueError, asyncio.IncompleteReadError):
                self._discard(conn)
                if attempt == 1 and reused and not got_bytes:
                    continue  # closed by the server while idle: it never saw the request
                raise
            self.free.put_nowait((reader, writer, time.monotonic()))
            return status, data
        raise AssertionError("unreachable")

    async def get(self, path: str) -> int:
        status, _ = await self.request("GET", path)
        return status

    async def post_json(self, path: str, payload: Any,
                        headers: dict[str, str] | None = None) -> tuple[int, Any]:
        status, data = await self.request("POST", path, orjson.dumps(payload), headers)
        return status, (orjson.loads(data) if data else None)

    async def close(self) -> None:
        while not self.free.empty():
            _, writer, _ = self.free.get_nowait()
            writer.close()
        self.opened = 0


RawGetPool = RawPool  # the read benchmark's name for it
