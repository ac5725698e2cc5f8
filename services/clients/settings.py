from __future__ import annotations

from decimal import Decimal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.clients.domain.credit import LimitPolicy, parse_behaviour
from shared.settings import ServiceSettings, platform_default


class ClientsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NORIA_CLIENTS_", extra="ignore")

    http_port: int = 8101
    # Progressive lending: the limit of a client's first loan cycle, what each loan
    # repaid in full adds, and the ceiling (MAD).
    first_cycle_limit: Decimal = Decimal("5000.00")
    limit_step: Decimal = Decimal("2500.00")
    limit_cap: Decimal = Decimal("20000.00")
    # After a loan is repaid, the worst days in arrears of its cycle decide the limit:
    # up to 7 days grow, up to 30 keep, later shrink ("days:move,…,*:move").
    limit_policy_table: str = "7:grow,30:keep,*:shrink"
    # Partners' credentials (POST /v1/partners): Keycloak's admin REST API, called as the
    # realm's service account noria-admin (client credentials).
    identity_admin_url: str = Field(
        default_factory=lambda: platform_default("keycloak_url", "http://127.0.0.1:8180"))
    identity_realm: str = "noria"
    identity_admin_client_id: str = "noria-admin"
    identity_admin_client_secret: SecretStr | None = Field(
        default_factory=lambda: SecretStr(v) if (v := platform_default(
            "keycloak_admin_client_secret", "")) else None)
    """None: partner onboarding answers 503 (no identity provider to create clients in)."""
    partner_audience: str = "noria"

    @field_validator("first_cycle_limit", "limit_step", "limit_cap")
    @classmethod
    def _cents(cls, value: Decimal) -> Decimal:
        if value < 0 or value != value.quantize(Decimal("0.01")):
            raise ValueError("a non-negative amount with at most two decimals")
        return value.quantize(Decimal("0.01"))

    @field_validator("limit_policy_table")
    @classmethod
    def _table(cls, value: str) -> str:
        parse_behaviour(value)  # a malformed table stops start-up
        return value

    @model_validator(mode="after")
    def _policy(self) -> ClientsSettings:
        self.limit_policy()  # the cap below the first-cycle limit stops start-up
        return self

    def limit_policy(self) -> LimitPolicy:
        return LimitPolicy(self.first_cycle_limit, self.limit_step, self.limit_cap,
                           parse_behaviour(self.limit_policy_table))
