"""SQL over the unit of work's connection, one module per aggregate: payouts, payments
(collections), refunds, webhook receipts and the ledger."""

from __future__ import annotations

from shared.db import Conn

__all__ = ["Conn"]
