"""Service settings from the environment: one prefix per service.

``NORIA_CLIENTS_DATABASE_URL`` configures the clients service's database, and so
on. A missing or invalid variable stops the service at start-up with a message
that names the variable.
"""

from __future__ import annotations

import os
import sys
from typing import TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_OIDC_ISSUER = "http://127.0.0.1:8180/realms/noria"


def platform_default(name: str, default: str) -> str:
    """A platform-wide default (``NORIA_<NAME>``) that each service's own variable
    (``NORIA_<SERVICE>_<NAME>``) overrides."""
    return os.environ.get(f"NORIA_{name.upper()}") or default


class OidcSettings(BaseSettings):
    """Whose tokens are trusted. ``NORIA_OIDC_ISSUER`` (and the other ``NORIA_OIDC_*``)
    set them for the whole platform; a service's prefixed variable overrides."""

    oidc_issuer: str = Field(
        default_factory=lambda: platform_default("oidc_issuer", DEFAULT_OIDC_ISSUER))
    oidc_jwks_url: str = Field(default_factory=lambda: platform_default("oidc_jwks_url", ""))
    """Empty: the issuer's own (``<issuer>/protocol/openid-connect/certs``)."""
    oidc_audience: str = Field(
        default_factory=lambda: platform_default("oidc_audience", "noria"))
    oidc_extra_issuers: str = Field(
        default_factory=lambda: platform_default("oidc_extra_issuers", ""))
    """Comma-separated further trusted issuers (another realm during a migration)."""
    oidc_jwks_min_refresh_s: float = Field(
        default_factory=lambda: float(platform_default("oidc_jwks_min_refresh_s", "10")))
    """An unknown ``kid`` refetches the JWKS at most this often."""
    rate_limit_per_s: float = Field(
        default_factory=lambda: float(platform_default("rate_limit_per_s", "20")))
    """Partner and wallet requests per second per client (0: unlimited); see
    ``shared.ratelimit``."""
    rate_limit_burst: float = Field(
        default_factory=lambda: float(platform_default("rate_limit_burst", "40")))
    rate_limits: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per client (or partner) id: ``{"rate_per_s": 5, "burst": 10}``."""
    metrics_basic_auth: SecretStr | None = Field(
        default_factory=lambda: SecretStr(v) if (v := platform_default(
            "metrics_basic_auth", "")) else None)
    """``user:password`` the Prometheus scraper sends to ``/metrics`` (besides a bearer
    token with ``metrics:read``)."""
    metrics_public: bool = False
    """``/metrics`` without credentials (only on a network nobody else reaches)."""
    api_docs: bool = True
    """``/docs`` and ``/openapi.json``: public in development; production may turn them off."""


class ServiceSettings(OidcSettings):
    """Settings every service has. Subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(env_prefix="NORIA_", extra="ignore")

    database_url: str
    kafka_bootstrap: str = "127.0.0.1:9092"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    db_schema: str = ""
    db_pool_min: int = 2
    db_pool_max: int = 10
    """The HTTP pool: request handlers' connections."""
    db_background_pool_min: int = 1
    db_background_pool_max: int = 6
    """The background pool: relay, consumers, jobs. HTTP traffic never takes these."""
    db_statement_timeout_s: float = 15.0
    """statement_timeout of the HTTP pool's sessions (0: none)."""
    db_background_statement_timeout_s: float = 60.0
    """statement_timeout of the background pool's sessions; close of business raises it
    per transaction with ``shared.db.statement_timeout``."""
    db_lock_timeout_s: float = 5.0
    db_idle_in_transaction_timeout_s: float = 30.0
    db_acquire_timeout_s: float = 5.0
    """How long an HTTP request waits for a connection before it is answered 503."""
    db_background_acquire_timeout_s: float = 30.0
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    relay_batch_size: int = 200
    relay_poll_interval_s: float = 0.5
    relay_linger_s: float = 0.005
    """After a LISTEN wake-up, wait this long so that close commits are relayed together."""
    relay_lease_s: float = 30.0
    relay_duplicate: bool = False
    consumer_max_retries: int = 3
    """Attempts of a failing handler (its own errors, not the database's) before the
    message is dead-lettered."""
    consumer_retry_backoff_s: float = 0.2
    """The first retry's wait; it doubles (with jitter) up to the max below."""
    consumer_retry_backoff_max_s: float = 5.0
    consumer_batch_max: int = 100
    """How many records of one poll may share a transaction (1: one each)."""
    consumer_batch_across_partitions: bool = False
    """The records of one poll share a transaction whatever their partition (False: one
    transaction per partition and poll). Off: it cut commits by a fifth without saving
    CPU, and its wider transactions deadlocked payments' ledger postings against the
    collection callbacks' (docs/benchmarks.md, Round 5)."""
    consumer_linger_s: float = 0.005
    """After a poll that found records, wait this long for more before processing them."""
    topic_partitions: int = 4
    topic_prefix: str = ""
    """Prefixes every topic the service publishes to or reads, and its consumer groups: an
    instance under test on a shared broker then talks only to its own topics and never
    answers, or commands, the services of a running platform. Empty in production."""
    topic_replication: int = 1
    retention_days: float = 14.0
    """Inbox, idempotency-key and dead-letter rows older than this are pruned. Keep it
    longer than Kafka's retention and the providers' retry windows: an inbox row must
    outlive every redelivery of its event."""
    retention_interval_s: float = 3600.0
    retention_batch_size: int = 5000


S = TypeVar("S", bound=ServiceSettings)


def env_names(cls: type[ServiceSettings]) -> dict[str, str]:
    """Map each field to the environment variable that sets it."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {name: f"{prefix}{name}".upper() for name in cls.model_fields}


def load_settings(cls: type[S]) -> S:
    """Load settings or exit with a message naming each bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        names = env_names(cls)
        lines = [f"{cls.__name__}: the service cannot start, its configuration is invalid:"]
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            var = names.get(field, field.upper())
            kind = "missing" if error["type"] == "missing" else error["msg"]
            lines.append(f"  {var}: {kind}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
