"""Prometheus metrics of the SMS path (served on /metrics with the platform's)."""

from __future__ import annotations

from prometheus_client import Counter

SMS_ATTEMPTS = Counter("noria_sms_attempts_total", "Submissions tried, by provider and outcome",
                       ["provider", "outcome"])
SMS_SUBMITTED = Counter("noria_sms_submitted_total", "Messages accepted by a provider",
                        ["provider", "language", "encoding"])
SMS_SEGMENTS = Counter("noria_sms_segments_total", "Parts submitted (what is paid for)",
                       ["provider", "encoding"])
HELD_TRIGGERS = Counter(
    "noria_sms_held_triggers_total",
    "Trigger events about a client not yet projected: held, released when the client"
    " registered, or stale (too old to send, recorded suppressed)", ["outcome"])
SMS_FINISHED = Counter("noria_sms_finished_total", "Messages that reached a final status",
                       ["status"])
SMS_INBOUND_REFUSED = Counter(
    "noria_sms_inbound_refused_total",
    "Delivery receipts and replies refused because the inbound queue was full (answered"
    " ESME_RX_T_APPN: the SMSC delivers them again)", ["provider", "kind"])
