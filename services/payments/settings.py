from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

DEV_CALLBACK_SECRET = "whsec_bm9yaWEtZGV2LW1vYmlsZS1tb25leS1jYWxsYmFjay1zZWNyZXQ="


class ProviderConfig(BaseModel):
    """One mobile-money provider, speaking the GSMA Mobile Money API v1.2."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    callback_secrets: list[SecretStr] = Field(
        default_factory=lambda: [SecretStr(DEV_CALLBACK_SECRET)],
        description="Standard Webhooks secrets (several during a key rotation)")
    api_key: SecretStr | None = None
    request_timeout_s: float = 5.0
    poll_after_s: float = 3.0
    opening_float: Decimal = Decimal("100000000.00")
    honours_expiry: bool = Field(default=False, description=(
        "the provider refuses to execute a request after the expiry we send; only then "
        "is a request it does not know after the deadline a failure (else: in doubt)"))


def _default_providers() -> dict[str, ProviderConfig]:
    return {"sim": ProviderConfig(base_url="http://127.0.0.1:8190")}


class PaymentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NORIA_PAYMENTS_", extra="ignore")

    http_port: int = 8103
    providers: dict[str, ProviderConfig] = Field(default_factory=_default_providers)
    default_provider: str = "sim"
    callback_base_url: str = "http://127.0.0.1:8103"
    webhook_tolerance_s: int = 300
    callback_max_in_flight: int = Field(default=0, ge=0, description=(
        "provider callbacks handled at once; beyond, 503 + Retry-After (the provider "
        "sends it again). 0: no limit (the default until a full benchmark run shows a "
        "value that helps: see docs/benchmarks.md)"))
    callback_retry_after_s: int = Field(default=1, ge=0, description=(
        "the least Retry-After of a refused callback; more when many are in flight: the "
        "time they take to finish at the rate callbacks have been finishing"))
    callback_retry_after_max_s: int = Field(default=1, ge=1, description=(
        "the most Retry-After of a refused callback. 1 (the default): always the least; "
        "more lets it grow with the queue, which one paired benchmark run did not show "
        "to help (docs/benchmarks.md, Round 6)"))
    payout_poll_interval_s: float = 0.5
    payout_expiry_grace_s: float = 5.0
    payout_batch_size: int = 20
    refund_deadline_s: float = 900.0
    wallet_confirm_window_s: float = Field(default=3600.0, gt=0, description=(
        "a wallet-reported repayment the provider has not confirmed by then ends "
        "rejected_unconfirmed (nothing credited, nothing refunded)"))
    wallet_confirm_interval_s: float = Field(default=2.0, gt=0, description=(
        "first wait between status queries of an unconfirmed wallet report (doubling)"))
    wallet_confirm_max_backoff_s: float = Field(default=300.0, gt=0)
    payee_lookup_poll_s: float = Field(default=0.5, gt=0, description=(
        "how often the payee lookup job looks for lookups due"))
    payee_lookup_retry_s: float = Field(default=2.0, gt=0, description=(
        "first wait before a payee lookup the provider did not answer is asked again "
        "(doubling)"))
    payee_lookup_retry_max_s: float = Field(default=300.0, gt=0, description=(
        "the longest wait between two attempts of an unanswered payee lookup"))
    accrual_workers: int = Field(default=2, ge=0, le=16, description=(
        "accrual workers on each replica: a night's staged InterestAccrued batches are "
        "posted this many at once (0: this replica posts none)"))
    accrual_lease_s: float = Field(default=60.0, gt=0, description=(
        "an accrual batch's lease: a worker that dies mid-batch leaves it to another "
        "after this long (one still posting keeps it: it holds the batch's row)"))
    accrual_poll_s: float = Field(default=1.0, gt=0, description=(
        "an idle accrual worker looks for staged batches this often"))
    accrual_retry_s: float = Field(default=5.0, gt=0, description=(
        "first wait before a batch whose posting failed is tried again (doubling)"))
    accrual_retry_max_s: float = Field(default=300.0, gt=0, description=(
        "the longest wait between two attempts of a failing accrual batch"))
    reconciliation_enabled: bool = True
    reconciliation_interval_s: float = Field(default=3600.0, gt=0, description=(
        "today's business day is reconciled this often, per provider"))
    reconciliation_yesterday_after_s: float = Field(default=1800.0, ge=0, description=(
        "yesterday is reconciled once this long after the business day's midnight "
        "(Africa/Casablanca), when the provider's statement of it is complete"))
    reconciliation_tick_s: float = Field(default=30.0, gt=0)
    reconciliation_lease_s: float = Field(default=120.0, gt=0, description=(
        "the scheduler's lease: one replica runs it, another takes over after this"))
    in_doubt_poll_s: float = Field(default=30.0, gt=0, description=(
        "an in-doubt payout is asked again after this long, doubling with each query"))
    in_doubt_poll_max_s: float = Field(default=900.0, gt=0, description=(
        "the longest wait between two queries of an in-doubt payout"))

    @field_validator("providers")
    @classmethod
    def _some_provider(cls, value: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        if not value:
            raise ValueError("configure at least one provider")
        for name in value:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"provider name {name!r}: letters, digits, - and _ only")
        return value

    @model_validator(mode="after")
    def _default_is_configured(self) -> PaymentsSettings:
        if self.default_provider not in self.providers:
            raise ValueError(f"default_provider {self.default_provider!r} is not one of the "
                             f"configured providers {sorted(self.providers)}")
        return self

    def provider(self, name: str) -> ProviderConfig | None:
        return self.providers.get(name)

    def callback_url(self, provider: str) -> str:
        """Where ``provider`` sends its callbacks (``X-Callback-URL`` of a payout)."""
        base = self.callback_base_url.rstrip("/")
        return f"{base}/v1/mobile-money/{provider}/callbacks"

    def topic(self, canonical: str) -> str:
        return f"{self.topic_prefix}{canonical}"
