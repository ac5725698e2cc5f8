"""Console settings from the environment (prefix ``NORIA_CONSOLE_``)."""

from __future__ import annotations

from pydantic import SecretStr
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
    savings_url: str = "http://127.0.0.1:8105"
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    cookie_secure: bool = False
    upstream_timeout_s: float = 8.0
    providers: str = "sim"
    log_level: str = "INFO"
    public_url: str = "http://127.0.0.1:8100"
    """Where browsers reach the console: the sign-in's redirect URI is under it."""
    oidc_client_id: str = "noria-console"
    oidc_client_secret: SecretStr | None = None
    """The console client's secret when it is confidential (production); none for the
    development realm's public client (PKCE alone)."""
    session_key: SecretStr | None = None
    """Fernet key of the session cookie (32 url-safe base64 bytes). None: a random key per
    process (development: a restart signs every operator out)."""
    session_max_s: int = 10 * 3600
    """A session ends after this long whatever the refreshes (Keycloak's own SSO maximum
    also applies)."""
    dev_token_login: bool = False
    """Development and tests only: also accept a pasted access token on /login."""

    def service_urls(self) -> dict[str, str]:
        return {
            "clients": self.clients_url.rstrip("/"),
            "loans": self.loans_url.rstrip("/"),
            "payments": self.payments_url.rstrip("/"),
            "notifications": self.notifications_url.rstrip("/"),
            "savings": self.savings_url.rstrip("/"),
        }

    def provider_names(self) -> list[str]:
        return [p.strip() for p in self.providers.split(",") if p.strip()]
