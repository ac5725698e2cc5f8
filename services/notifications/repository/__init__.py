"""SQL over a connection (``shared.db.Conn``) with ``$n`` parameters, one module per
aggregate: the contact projection (``contacts``), held triggers (``held``), templates
(``templates``), outgoing messages and their attempts (``messages``), delivery receipts
and message parts (``receipts``), and replies from phones (``replies``)."""

from __future__ import annotations

from shared.db import Conn

__all__ = ["Conn"]
