"""What the providers hear from the network (delivery receipts, replies), taken off
their links at once.

An SMPP session has one read loop: it hands every ``submit_sm_resp`` to the
submission waiting for it. If that loop waited for PostgreSQL while handling a
``deliver_sm``, a slow database would hold the responses behind it; the
submissions would time out and be tried again, and the client would get the same
SMS twice. So the loop only *offers* what it heard to this bounded queue (never
waiting) and answers the ``deliver_sm`` at once; the sending worker drains the
queue and writes it in batches.

When the queue is full the offer is refused and the SMPP client answers the
``deliver_sm`` with ``ESME_RX_T_APPN`` (a temporary error): the SMSC keeps the
receipt and delivers it again later. Back-pressure lands on receipts only;
submissions never wait for it.

A receipt accepted here but not yet written when the process dies is lost (the SMSC
has its acknowledgement): the message stays ``submitted``. On an orderly stop the
worker unbinds first, then writes what is queued before it exits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.notifications.domain.messages import Receipt
from services.notifications.metrics import SMS_INBOUND_REFUSED


@dataclass(frozen=True)
class Reply:
    """A message from a phone (mobile-originated): a STOP, or anything else."""

    phone: str
    text: str


Inbound = tuple[str, Receipt | Reply]
"""(provider name, what it heard)."""


class InboundQueue:
    """A bounded queue between the providers' links and the worker that stores."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("the inbound queue holds at least one item")
        self._queue: asyncio.Queue[Inbound] = asyncio.Queue(maxsize)
        self.refused = 0

    def offer(self, provider: str, item: Receipt | Reply) -> bool:
        """Queue ``item`` without waiting; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait((provider, item))
        except asyncio.QueueFull:
            self.refused += 1
            SMS_INBOUND_REFUSED.labels(provider, type(item).__name__.lower()).inc()
            return False
        return True

    async def take(self, max_items: int) -> list[Inbound]:
        """Wait for one item, then take every other one queued, up to ``max_items``."""
        batch = [await self._queue.get()]
        while len(batch) < max_items:
            try:
                batch.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return batch

    def done(self, batch: list[Inbound]) -> None:
        """``batch`` (from :meth:`take`) is stored."""
        for _ in batch:
            self._queue.task_done()

    async def join(self) -> None:
        """Until every item queued so far is stored."""
        await self._queue.join()

    def __len__(self) -> int:
        return self._queue.qsize()
