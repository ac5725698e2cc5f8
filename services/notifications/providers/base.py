"""What every SMS provider offers the sending worker."""

from __future__ import annotations

from typing import Protocol

from services.notifications.domain.encoding import EncodedText
from services.notifications.domain.messages import FailureKind, Receipt


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

    async def submit(self, phone: str, message: EncodedText, reference: str) -> list[str]:
        """Submit every part; return the provider's id of each part, in order.

        ``reference`` is the message's own id: every attempt for one message carries
        the same one, so a provider that saw an earlier attempt can de-duplicate."""
        ...

    async def poll(self, provider_ids: list[str]) -> list[Receipt]:
        """Receipts for ids still pending, for providers that do not push them."""
        ...
