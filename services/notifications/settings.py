"""The notifications service's settings (``NORIA_NOTIFICATIONS_…``) and the policies
built from them: quiet hours, retries, how long a trigger may be held."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict

from services.notifications.domain.messages import QuietHours, RetryPolicy
from shared.settings import ServiceSettings


class ProviderConfig(BaseModel):
    """One SMS route; the list's order is the failover order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Literal["smpp", "http"]
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = "noria"
    password: str = "noria"
    source_addr: str = "Noria"
    url: str = ""
    api_key: str = ""
    timeout_s: float = 5.0
    enquire_link_s: float = 20.0


DEFAULT_PROVIDERS = [
    ProviderConfig(name="smsc", kind="smpp", host="127.0.0.1", port=2775),
    ProviderConfig(name="aggregator", kind="http", url="http://127.0.0.1:8191/aggregator"),
]


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NORIA_NOTIFICATIONS_", extra="ignore")

    http_port: int = 8104
    # JSON list, e.g. [{"name":"smsc","kind":"smpp","host":"127.0.0.1","port":2775}, ...]
    providers: list[ProviderConfig] = DEFAULT_PROVIDERS
    quiet_start_hour: int = 21
    quiet_end_hour: int = 8
    max_attempts: int = 5
    retry_base_s: float = 2.0
    retry_cap_s: float = 300.0
    throttle_backoff_s: float = 5.0
    worker_poll_s: float = 0.5
    worker_batch: int = 20
    claim_lease_s: float = 60.0
    receipt_poll_s: float = 2.0
    # Receipts and replies heard by the providers wait here to be stored; when it is full
    # an SMPP deliver_sm is answered ESME_RX_T_APPN and the SMSC delivers it again later.
    inbound_queue_size: int = Field(default=10_000, gt=0)
    # A trigger held for a client not yet projected is released when the client is
    # registered; if its event is older than this by then, it is recorded suppressed
    # (stale_unknown_client) instead of sent.
    held_trigger_max_age_s: float = Field(default=86400.0, gt=0)
    # How often triggers held past that age, for clients who never registered, are
    # settled (recorded suppressed stale_unknown_client) instead of kept for ever.
    held_sweep_interval_s: float = Field(default=300.0, gt=0)

    def quiet_hours(self) -> QuietHours:
        return QuietHours(self.quiet_start_hour, self.quiet_end_hour)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, base_s=self.retry_base_s,
                           cap_s=self.retry_cap_s, throttle_s=self.throttle_backoff_s)

    def held_max_age(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.held_trigger_max_age_s)
