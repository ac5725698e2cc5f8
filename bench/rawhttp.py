"""A lean keep-alive HTTP/1.1 GET client for the read benchmark.

At 500 requests a second a general-purpose client costs the load generator
most of a core on this 2-core machine, time taken from the service it
measures. This one keeps ``connections`` sockets open and does nothing but
write a request and read one response (``Content-Length`` bodies only, which
is what the services send).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class RawGetPool:
    def __init__(self, base_url: str, headers: dict[str, str], connections: int = 32) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.size = connections
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue())
        self.opened = 0

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.free.empty() and self.opened < self.size:
            self.opened += 1
            try:
                return await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.opened -= 1
                raise
        return await self.free.get()

    async def get(self, path: str) -> int:
        """Status code of ``GET path``; raises OSError/ValueError on a broken answer."""
        reader, writer = await self._connection()
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}\r\n"
                         .encode("latin-1"))
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
        except BaseException:
            writer.close()
            self.opened -= 1
            raise
        self.free.put_nowait((reader, writer))
        return status

    async def close(self) -> None:
        while not self.free.empty():
            _, writer = self.free.get_nowait()
            writer.close()
