"""An HTTP SMS aggregator: a JSON POST API, receipts fetched by status query.

``POST {url}/v1/messages {to, text, encoding, reference}`` answers 202 with
``{id, parts}`` (``reference`` is the message's id, the same on every attempt);
429 is throttling (``Retry-After``), other 4xx a permanent refusal, 5xx or no
answer a temporary failure. ``GET {url}/v1/messages/{id}`` answers ``{id, status}``
with the SMPP receipt words (``DELIVRD``, ``UNDELIV`` …).
"""

from __future__ import annotations

import httpx

from services.notifications.domain.encoding import EncodedText
from services.notifications.domain.messages import Receipt
from services.notifications.providers.base import ProviderError


class HttpAggregatorProvider:
    def __init__(self, name: str, url: str, *, api_key: str = "", timeout_s: float = 5.0
                 ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout_s, headers=headers)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self._client.aclose()

    async def submit(self, phone: str, message: EncodedText, reference: str) -> list[str]:
        # the same reference on every attempt: the aggregator answers a repeat with the
        # message it already accepted instead of sending it again
        body = {"to": phone, "text": message.text, "encoding": message.encoding,
                "reference": reference}
        try:
            resp = await self._client.post(f"{self.url}/v1/messages", json=body)
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderError("temporary", f"{self.name} did not answer in "
                                f"{self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise ProviderError("temporary", f"{self.name} unreachable: {exc}") from None
        if resp.status_code == 429:
            raise ProviderError("throttled", f"{self.name} throttled (429)")
        if 400 <= resp.status_code < 500:
            raise ProviderError("permanent", f"{self.name} refused ({resp.status_code}): "
                                f"{resp.text[:200]}")
        if resp.status_code >= 300:
            raise ProviderError("temporary", f"{self.name} failed ({resp.status_code})")
        data = resp.json()
        return [str(data["id"])]

    async def poll(self, provider_ids: list[str]) -> list[Receipt]:
        receipts: list[Receipt] = []
        for pid in provider_ids:
            try:
                resp = await self._client.get(f"{self.url}/v1/messages/{pid}")
            except httpx.HTTPError:
                continue
            if resp.status_code != 200:
                continue
            stat = str(resp.json().get("status", "")).upper()
            if stat and stat not in ("ENROUTE", "ACCEPTD"):
                receipts.append(Receipt(pid, stat))
        return receipts
