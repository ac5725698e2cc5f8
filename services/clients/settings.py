from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ClientsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NORIA_CLIENTS_", extra="ignore")

    http_port: int = 8101
