"""Opaque keyset cursors: ``(listing order, instant, id)`` of the last row of a page.

A cursor is only ever one this service handed out; anything else (another listing's,
another order's, edited) is a 422 naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from shared.errors import InvalidInput

MAX_CURSOR_LENGTH = 512


def encode(order: str, at: datetime, row_id: str) -> str:
    raw = json.dumps([order, at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, order: str) -> tuple[datetime, str]:
    """The instant and id a cursor of ``order`` points after."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, at, row_id = json.loads(raw)
        if (kind == order and isinstance(at, str) and isinstance(row_id, str)
                and "\x00" not in row_id and row_id.encode()):   # no lone surrogate
            instant = datetime.fromisoformat(at)
            if instant.tzinfo is not None:
                return instant, row_id
    except (ValueError, TypeError, binascii.Error):   # UnicodeError is a ValueError
        pass
    raise InvalidInput(f"not a cursor this listing returned (order {order})", field="cursor")
