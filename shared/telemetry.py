"""Telemetry: OpenTelemetry traces, Prometheus metrics and JSON logs."""

from __future__ import annotations

import logging
import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
)
from prometheus_client import Counter, Gauge, Histogram
from pythonjsonlogger.json import JsonFormatter

from shared import context

HTTP_LATENCY = Histogram(
    "noria_http_request_seconds", "HTTP request latency",
    ["service", "method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_BACKLOG = Gauge("noria_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_PUBLISHED = Counter("noria_outbox_published_total", "Outbox rows published", ["service"])
CONSUMER_LAG = Gauge(
    "noria_consumer_lag", "Records behind the partition end", ["service", "group", "topic"]
)
CONSUMED = Counter(
    "noria_messages_consumed_total", "Messages consumed", ["service", "group", "outcome"]
)
DLQ_COUNT = Counter(
    "noria_dead_letters_total", "Messages sent to a dead-letter topic", ["service", "group"]
)
RETENTION_PRUNED = Counter(
    "noria_retention_pruned_rows_total", "Rows deleted by the retention job",
    ["service", "table"])

_configured_provider: TracerProvider | None = None


class WhenExporting(Sampler):
    """Records spans only once something receives them (a span processor was added).

    Until then every span is non-recording: it still has its trace and span ids, so
    ``traceparent`` goes on outbox rows and Kafka headers and log lines carry a trace
    id, but nothing is timed, given attributes or kept. With a processor, spans follow
    their parent's sampling decision (a root is recorded).
    """

    def __init__(self) -> None:
        self.exporting = False
        self._on = ParentBased(root=ALWAYS_ON)

    def should_sample(self, parent_context: Any, trace_id: int, name: str,
                      kind: Any = None, attributes: Any = None, links: Any = None,
                      trace_state: Any = None) -> SamplingResult:
        if not self.exporting:
            return ALWAYS_OFF.should_sample(parent_context, trace_id, name, kind, attributes,
                                            links, trace_state)
        return self._on.should_sample(parent_context, trace_id, name, kind, attributes,
                                      links, trace_state)

    def get_description(self) -> str:
        return "WhenExporting"


class _Provider(TracerProvider):
    """A tracer provider whose sampler starts recording when a processor is added."""

    def __init__(self, sampler: WhenExporting, **kwargs: Any) -> None:
        super().__init__(sampler=sampler, **kwargs)
        self._when_exporting = sampler

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self._when_exporting.exporting = True


def setup_tracing(service: str, otlp_endpoint: str | None = None) -> TracerProvider:
    """Install one tracer provider per process (idempotent).

    Spans are recorded only when they go somewhere: with ``otlp_endpoint`` (or once a
    test adds a span processor); otherwise they are non-recording and cost little more
    than their ids (see :class:`WhenExporting`).
    """
    global _configured_provider
    if _configured_provider is not None:
        return _configured_provider
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        _configured_provider = current
        return current
    provider = _Provider(WhenExporting(),
                         resource=Resource.create({"service.name": f"noria-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint}/v1/traces"))
        )
    trace.set_tracer_provider(provider)
    _configured_provider = provider
    return provider


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        record.service = self.service
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else None
        record.span_id = format(span.span_id, "016x") if span.is_valid else None
        record.correlation_id = context.correlation_id.get()
        return True


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(
        "{asctime}{levelname}{name}{message}", style="{",
        rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
    ))
    handler.addFilter(_ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def span_attributes(**attrs: Any) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v is not None}
