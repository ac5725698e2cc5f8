"""Payment ids of repayments that do not come from a wallet (pure).

A wallet's repayment is recorded under a UUID payments chooses. A branch's cash
collection arrives with loans' ``collection_id`` (``csh_…``) and a standing-instruction
payment with savings' ``payment_id``: loans answers ``RepaymentApplied`` and
``RepaymentRejected`` with the id it was told, so the ``payments`` row of such a
repayment is keyed by a UUID derived from that id, the same every time.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("5b0f8c1e-93a4-4d7e-b6a1-2c1d9e0f4a77")


def payment_uuid(payment_id: str) -> uuid.UUID:
    """The UUID itself when ``payment_id`` is one, else one derived from it."""
    try:
        return uuid.UUID(payment_id)
    except ValueError:
        return uuid.uuid5(NAMESPACE, payment_id)
