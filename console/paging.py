"""Links that page through a service's keyset-paged list, and what the maker-checker audit
says is still waiting for a second operator (pure, no I/O)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode


def href(path: str, **params: Any) -> str:
    """``path`` with the non-empty ``params`` as its query."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


def next_href(path: str, cursor_name: str, cursor: Any, **params: Any) -> str | None:
    """The next page's link, or None on the last page (the service gave no cursor)."""
    if cursor in (None, ""):
        return None
    return href(path, **params, **{cursor_name: cursor})


def with_flash(target: str, flash: str) -> str:
    return f"{target}{'&' if '?' in target else '?'}flash={flash}"


def open_proposals(audit: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The ``<prefix>_proposed`` entries of a payout audit that no approval or supersession
    has closed yet: ``{approval_id, proposed_by, proposed_at, body}``, oldest first."""
    opened: dict[Any, dict[str, Any]] = {}
    for entry in audit:
        action = str(entry.get("action", ""))
        key = entry.get("approval_id")
        if action == f"{prefix}_proposed":
            detail = entry.get("detail")
            opened[key] = {"approval_id": key, "proposed_by": entry.get("actor"),
                           "proposed_at": entry.get("at"),
                           "body": detail if isinstance(detail, dict) else {}}
        elif action.startswith(f"{prefix}_"):
            opened.pop(key, None)
    return list(opened.values())
