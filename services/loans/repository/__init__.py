"""SQL over the loans schema (``$1`` parameters), returning domain objects."""

from __future__ import annotations

from shared.db import Conn

__all__ = ["Conn"]
