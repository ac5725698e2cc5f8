"""Providers are configured by name from the environment."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.payments.settings import PaymentsSettings


def test_providers_come_from_one_json_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORIA_PAYMENTS_DATABASE_URL", "postgresql://x@h/db")
    monkeypatch.setenv("NORIA_PAYMENTS_PROVIDERS", json.dumps({
        "sim": {"base_url": "http://127.0.0.1:8190"},
        "orange": {"base_url": "https://api.orange.example", "callback_secrets": ["s1", "s2"],
                   "opening_float": "2500000.00", "poll_after_s": 10},
    }))
    settings = PaymentsSettings()
    assert sorted(settings.providers) == ["orange", "sim"]
    orange = settings.providers["orange"]
    assert [s.get_secret_value() for s in orange.callback_secrets] == ["s1", "s2"]
    assert orange.opening_float == Decimal("2500000.00")
    assert "s1" not in repr(orange)  # secrets stay out of logs


def test_the_default_provider_must_be_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORIA_PAYMENTS_DATABASE_URL", "postgresql://x@h/db")
    monkeypatch.setenv("NORIA_PAYMENTS_PROVIDERS",
                       json.dumps({"orange": {"base_url": "https://api.orange.example"}}))
    with pytest.raises(ValidationError, match="default_provider"):
        PaymentsSettings()
    monkeypatch.setenv("NORIA_PAYMENTS_DEFAULT_PROVIDER", "orange")
    assert PaymentsSettings().default_provider == "orange"
