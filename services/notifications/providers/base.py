"""What every SMS provider offers the sending worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from services.notifications.domain.encoding import EncodedText
from services.notifications.domain.messages import FailureKind, Receipt

ReceiptSink = Callable[[str, Receipt], Awaitable[None]]
"""Called with (provider name, receipt) for each delivery receipt."""
ReplySink = Callable[[str, str, str], Awaitable[None]]
"""Called with (provider name, phone in E.164, text) for each reply (MO message)."""


class ProviderError(Exception):
    """A provider refused or could not take a submission."""

    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(detail)
        self.kind: FailureKind = kind
        self.detail = detail


class Provider(Protocol):
    name: str
    timeout_s: float

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, phone: str, message: EncodedText, reference: int) -> list[str]:
        """Submit every part; return the provider's id of each part, in order."""
        ...

    async def poll(self, provider_ids: list[str]) -> list[Receipt]:
        """Receipts for ids still pending, for providers that do not push them."""
        ...
