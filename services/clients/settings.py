from __future__ import annotations

from decimal import Decimal

from pydantic import field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.clients.domain.credit import LimitPolicy
from shared.settings import ServiceSettings


class ClientsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NORIA_CLIENTS_", extra="ignore")

    http_port: int = 8101
    # Progressive lending: the limit of a client's first loan cycle, what each loan
    # repaid in full adds, and the ceiling (MAD).
    first_cycle_limit: Decimal = Decimal("5000.00")
    limit_step: Decimal = Decimal("2500.00")
    limit_cap: Decimal = Decimal("20000.00")

    @field_validator("first_cycle_limit", "limit_step", "limit_cap")
    @classmethod
    def _cents(cls, value: Decimal) -> Decimal:
        if value < 0 or value != value.quantize(Decimal("0.01")):
            raise ValueError("a non-negative amount with at most two decimals")
        return value.quantize(Decimal("0.01"))

    @model_validator(mode="after")
    def _policy(self) -> ClientsSettings:
        self.limit_policy()  # the cap below the first-cycle limit stops start-up
        return self

    def limit_policy(self) -> LimitPolicy:
        return LimitPolicy(self.first_cycle_limit, self.limit_step, self.limit_cap)
