"""Office filters over the contact projection's ``office_path`` (the client's current
office, a materialised path of office ids such as ``ho/r-souss/b-agadir``)."""

from __future__ import annotations

from dataclasses import dataclass


def _like_prefix(path: str) -> str:
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}/%"


@dataclass(frozen=True)
class OfficeFilter:
    """``within``: a token's office path — that office and its subtree only.
    ``office_id``: a requested office — the clients of that office or of any office
    below it (an id is one segment of the paths under it). A row whose client has no
    office known matches neither."""

    within: str | None = None
    office_id: str | None = None

    @property
    def active(self) -> bool:
        return self.within is not None or self.office_id is not None

    def sql(self, column: str, args: list[object]) -> str:
        """A condition on ``column`` (an office path), its values appended to ``args``."""
        clauses: list[str] = []
        if self.within is not None:
            args.append(self.within)
            args.append(_like_prefix(self.within))
            clauses.append(f"({column} = ${len(args) - 1} OR {column} LIKE ${len(args)})")
        if self.office_id is not None:
            args.append(self.office_id)
            clauses.append(f"${len(args)}::text = ANY(string_to_array({column}, '/'))")
        return " AND ".join(clauses) or "true"
