"""Prometheus metrics of the payments service (served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PAYOUTS_SETTLED = Counter(
    "noria_payments_payouts_settled_total", "Payouts that reached a final state",
    ["kind", "provider", "status", "resolved_by"])
PAYOUTS_IN_FLIGHT = Gauge(
    "noria_payments_payouts_in_flight", "Payouts not yet final", ["status"])
CALLBACKS = Counter(
    "noria_payments_callbacks_total", "Provider callbacks received", ["provider", "outcome"])
PROVIDER_CALLS = Counter(
    "noria_payments_provider_calls_total", "Calls made to a provider, by what it answered",
    ["provider", "call", "seen"])
