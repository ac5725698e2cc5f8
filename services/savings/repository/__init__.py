"""SQL over the unit of work's connection; returns domain objects."""

from __future__ import annotations

from shared.db import Conn

__all__ = ["Conn"]
