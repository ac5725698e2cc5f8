from __future__ import annotations

from datetime import time
from decimal import Decimal

from pydantic import field_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class SavingsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NORIA_SAVINGS_", extra="ignore")

    http_port: int = 8105
    opening_approval_above: Decimal = Decimal("10000.00")
    """Maker-checker: an account whose opening deposit is above this (MAD) waits for a
    second person's approval before it is active."""
    payout_deadline_s: float = 600.0
    """How long payments may take to pay a withdrawal out (``PayOutWithdrawal.deadline``)."""
    payout_provider: str | None = None
    """The mobile-money provider withdrawals go through (None: payments' default)."""
    cob_max_catch_up_days: int = 366
    """Close of business runs every missed business date in order, at most this many."""
    cob_schedule_enabled: bool = True
    cob_daily_at: time = time(23, 45)
    """The business day ends here (local time, Africa/Casablanca): from then on the
    scheduler closes that date; before it, the day before (a missed night is caught up)."""
    cob_check_interval_s: float = 60.0
    cob_statement_timeout_s: float = 30 * 60.0
    """How long one close-of-business statement may run (1.24 million accounts in one
    UPDATE), above the background sessions' own statement timeout (0: no limit)."""

    def topic(self, canonical: str) -> str:
        """The topic this instance uses for the platform topic ``canonical``."""
        return f"{self.topic_prefix}{canonical}"

    @field_validator("opening_approval_above")
    @classmethod
    def _cents(cls, value: Decimal) -> Decimal:
        if value < 0 or value != value.quantize(Decimal("0.01")):
            raise ValueError("a non-negative amount with at most two decimals")
        return value.quantize(Decimal("0.01"))
