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
WALLET_REPORTS = Counter(
    "noria_payments_wallet_reports_total",
    "Wallet-reported repayments by what the provider made of them",
    ["provider", "outcome"])
RECONCILIATION_RUNS = Counter(
    "noria_payments_reconciliation_runs_total", "Reconciliation runs",
    ["provider", "trigger", "outcome"])
RECONCILIATION_ALERTS = Counter(
    "noria_payments_reconciliation_alerts_total",
    "Reconciliation mismatches raised (each once per provider, day and reference)",
    ["provider", "mismatch"])
RECONCILIATION_OPEN_ALERTS = Gauge(
    "noria_payments_reconciliation_alerts_open",
    "Open reconciliation alerts of the provider's last reconciled day",
    ["provider"])
PAYOUTS_IN_DOUBT = Gauge(
    "noria_payments_payouts_in_doubt", "Payouts whose outcome the provider has not told us "
    "after their deadline (settled only by the provider's word or an operator's evidence)",
    ["kind", "provider"])
PAYOUTS_IN_DOUBT_TOTAL = Counter(
    "noria_payments_payouts_entered_doubt_total", "Payouts that went into doubt",
    ["kind", "provider"])
