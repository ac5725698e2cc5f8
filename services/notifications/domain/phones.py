"""Phones in one form: what notifications compares (recipients, opt-outs, replies) is
the canonical E.164 of ``shared.identifiers``, so ``0612345678``, ``+212 6 12 34 56 78``
and the same number written in Arabic-Indic digits are one phone."""

from __future__ import annotations

import logging

from shared.identifiers import InvalidIdentifier, canonical_phone

log = logging.getLogger("noria.notifications")


def heard_phone(phone: str, *, source: str) -> str:
    """The canonical form of a phone someone else already accepted (an event from
    clients, a reply from the SMSC); kept as given, and logged, when it has none: a
    contact is never dropped over its spelling."""
    try:
        return canonical_phone(phone)
    except InvalidIdentifier as exc:
        log.warning("%s: phone %r kept as given (%s)", source, phone, exc)
        return phone
