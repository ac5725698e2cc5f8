from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

from pydantic_settings import SettingsConfigDict

from services.loans.domain.saga import SagaPolicy
from shared.settings import ServiceSettings


class LoansSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NORIA_LOANS_", extra="ignore")

    http_port: int = 8102
    # the disbursement saga
    saga_credit_timeout_s: float = 120.0
    saga_payout_timeout_s: float = 600.0
    saga_payout_grace_s: float = 120.0
    saga_max_resends: int = 2
    saga_savings_wait_s: float = 3 * 24 * 3600.0
    """How long a saga waits for the compulsory savings to be held before compensating."""
    sweeper_interval_s: float = 15.0
    # servicing
    repayment_due_days_before: int = 3
    write_off_min_days_in_arrears: int = 180
    # the most a loan of a purpose may lend (MAD), e.g. {"housing": "30000.00"}
    purpose_ceilings: dict[str, Decimal] = {}
    # close of business: run daily at this local time (Africa/Casablanca) for that business date
    cob_schedule_enabled: bool = True
    cob_daily_at: time = time(23, 30)
    cob_check_interval_s: float = 60.0
    cob_statement_timeout_s: float = 30 * 60.0
    """How long one close-of-business statement may run, above the background sessions'
    own statement timeout (0: no limit)."""

    def saga_policy(self) -> SagaPolicy:
        return SagaPolicy(
            credit_timeout=timedelta(seconds=self.saga_credit_timeout_s),
            payee_timeout=timedelta(seconds=self.saga_credit_timeout_s),
            payout_timeout=timedelta(seconds=self.saga_payout_timeout_s),
            payout_grace=timedelta(seconds=self.saga_payout_grace_s),
            max_resends=self.saga_max_resends,
            savings_wait=timedelta(seconds=self.saga_savings_wait_s),
        )
