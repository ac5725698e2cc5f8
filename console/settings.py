"""Console settings from the environment (prefix ``NORIA_CONSOLE_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import OidcSettings


class ConsoleSettings(OidcSettings):
    """Where the services are and how the console serves its pages.

    The console has no database: everything it shows comes from the services'
    HTTP APIs, called with the signed-in operator's own bearer token.
    """

    model_config = SettingsConfigDict(env_prefix="NORIA_CONSOLE_", extra="ignore")

    clients_url: str = "http://127.0.0.1:8101"
    loans_url: str = "http://127.0.0.1:8102"
    payments_url: str = "http://127.0.0.1:8103"
    notifications_url: str = "http://127.0.0.1:8104"
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    cookie_secure: bool = False
    upstream_timeout_s: float = 8.0
    providers: str = "sim"
    log_level: str = "INFO"

    def service_urls(self) -> dict[str, str]:
        return {
            "clients": self.clients_url.rstrip("/"),
            "loans": self.loans_url.rstrip("/"),
            "payments": self.payments_url.rstrip("/"),
            "notifications": self.notifications_url.rstrip("/"),
        }

    def provider_names(self) -> list[str]:
        return [p.strip() for p in self.providers.split(",") if p.strip()]
