"""The keyset cursor of payments' listings: a page ends at a row's (time, id), and the
next page starts after it, so paging lists every row once even while new rows arrive.

The cursor is opaque to clients (URL-safe base64 of ``<ISO time>|<uuid>``); one this
service did not give out is a 422 naming ``cursor``."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid

from shared.errors import InvalidInput


def encode_cursor(at: dt.datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(value: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    """The (time, id) a page ended at; None for the first page."""
    if not value:
        return None
    try:
        at_text, id_text = base64.urlsafe_b64decode(value.encode()).decode().split("|")
        at = dt.datetime.fromisoformat(at_text)
        if at.tzinfo is None:
            raise ValueError(at_text)
        return at, uuid.UUID(id_text)
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidInput("cursor is not one this service gave out; start again without it",
                           field="cursor") from None
