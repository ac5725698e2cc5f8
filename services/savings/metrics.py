"""Savings metrics: money movements by kind, and the withdrawals still open by status."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MOVEMENTS = Counter("noria_savings_movements_total",
                    "Deposits, withdrawals and releases applied to savings accounts",
                    ["kind"])
OPEN_WITHDRAWALS = Gauge("noria_savings_withdrawals_open",
                         "Withdrawals waiting for payments, by status (pending, in_doubt,"
                         " review)", ["status"])
