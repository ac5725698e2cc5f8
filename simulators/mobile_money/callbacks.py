"""How the simulator calls payments back: a lean keep-alive HTTP/1.1 client.

The simulator runs on the same cores as what it exercises, and a general-purpose
client (httpx: connection-pool bookkeeping, anyio streams, cookies, redirects)
cost more CPU per callback than payments' own handling of it. This one keeps
sockets open per ``host:port`` and only writes a request and reads one response
(``Content-Length`` or chunked bodies). Anything but ``http://`` goes through
httpx.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    text: str


class CallbackError(Exception):
    """No answer (refused, reset, timed out, unreadable)."""


class CallbackClient:
    def __init__(self, timeout_s: float = 10.0, max_idle_per_host: int = 64) -> None:
        self.timeout_s = timeout_s
        self.max_idle = max_idle_per_host
        self._idle: dict[tuple[str, int], list[Conn]] = {}
        self._fallback: httpx.AsyncClient | None = None

    async def request(self, method: str, url: str, body: bytes,
                      headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            return await self._via_httpx(method, url, body, headers)
        key = (parts.hostname, parts.port or 80)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        payload = (f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}"
                   f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
        # a kept-alive socket the server has closed in the meantime fails at once: one
        # more try on a fresh connection (the request was not processed)
        for attempt in (0, 1):
            reused = bool(self._idle.get(key)) and attempt == 0
            conn = self._idle[key].pop() if reused else None
            try:
                async with asyncio.timeout(self.timeout_s):
                    if conn is None:
                        conn = await asyncio.open_connection(*key)
                    answer, keep = await _exchange(conn, payload)
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
                if conn is not None:
                    conn[1].close()
                if reused and not isinstance(exc, TimeoutError):
                    continue
                raise CallbackError(f"{type(exc).__name__}: {exc}") from None
            pool = self._idle.setdefault(key, [])
            if keep and len(pool) < self.max_idle:
                pool.append(conn)
            else:
                conn[1].close()
            return answer
        raise CallbackError("no answer")  # pragma: no cover (the loop returns or raises)

    async def _via_httpx(self, method: str, url: str, body: bytes,
                         headers: dict[str, str]) -> Answer:
        if self._fallback is None:
            self._fallback = httpx.AsyncClient(timeout=self.timeout_s)
        try:
            resp = await self._fallback.request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise CallbackError(f"{type(exc).__name__}: {exc}") from None
        return Answer(resp.status_code, {k.lower(): v for k, v in resp.headers.items()},
                      resp.text)

    async def aclose(self) -> None:
        for pool in self._idle.values():
            for _, writer in pool:
                writer.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()


async def _exchange(conn: Conn, payload: bytes) -> tuple[Answer, bool]:
    reader, writer = conn
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status_text = lines[0].split(" ", 2)[:2]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers are sent to us
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        raw = b"".join(chunks)
    else:
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    return Answer(int(status_text), headers, raw.decode("utf-8", "replace")), keep
