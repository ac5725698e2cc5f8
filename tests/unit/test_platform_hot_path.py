"""The platform's hot path: what a consumer skips undecoded, what it decodes once, and
when spans are recorded."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from opentelemetry import propagate
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.envelope import Contract, Envelope, envelope_for, register
from shared.inbox import InboxConsumer, RawMessage
from shared.telemetry import WhenExporting, _Provider


@register
class HotPathHandled(Contract):
    topic: ClassVar[str] = "unit.hot"
    n: int


@register
class HotPathNotHandled(Contract):
    topic: ClassVar[str] = "unit.hot"
    n: int


async def _handler(uow: Any, msg: Any, env: Any) -> None:
    return None


def _consumer() -> InboxConsumer:
    return InboxConsumer(service="unit", group="unit", topics=["unit.hot"],
                         handlers={"HotPathHandled": _handler}, pool=None,  # type: ignore[arg-type]
                         consumer_factory=lambda: None,
                         dlq_producer=None)  # type: ignore[arg-type]


class TestSkippedUndecoded:
    def test_a_registered_type_without_a_handler_is_skipped_by_its_header(self) -> None:
        c = _consumer()
        assert c.skips([("type", b"HotPathNotHandled")])
        assert c.skips((("traceparent", b"00-x"), ("type", b"HotPathNotHandled")))

    def test_handled_unknown_or_headerless_records_are_decoded(self) -> None:
        c = _consumer()
        assert not c.skips([("type", b"HotPathHandled")])
        # unknown types are decoded, so that they are dead-lettered as before
        assert not c.skips([("type", b"NoSuchTypeAnywhere")])
        assert not c.skips([])
        assert not c.skips(None)

    async def test_a_message_is_decoded_once(self, monkeypatch: Any) -> None:
        c = _consumer()
        env = envelope_for(HotPathNotHandled(n=1), aggregate_id="a")
        msg = RawMessage("unit.hot", 0, 7, b"a", env.to_bytes())
        calls = 0
        original = Envelope.from_bytes

        def counting(raw: bytes) -> Envelope:
            nonlocal calls
            calls += 1
            return original(raw)

        monkeypatch.setattr(Envelope, "from_bytes", staticmethod(counting))
        await c.process_many([msg])  # a headerless unhandled message: decoded, ignored
        assert calls == 1

    def test_an_envelope_round_trips_through_bytes(self) -> None:
        env = envelope_for(HotPathHandled(n=3), aggregate_id="k", correlation_id="c")
        back = Envelope.from_bytes(env.to_bytes())
        assert back == env
        assert isinstance(back.event_id, uuid.UUID)
        assert back.parse() == HotPathHandled(n=3)


class TestSpansOnlyWhenExported:
    def test_nothing_is_recorded_until_a_processor_is_added_but_ids_propagate(self) -> None:
        provider = _Provider(WhenExporting())
        tracer = provider.get_tracer("unit")
        with tracer.start_as_current_span("request") as span:
            assert not span.is_recording()
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
        assert carrier["traceparent"].split("-")[1] == format(
            span.get_span_context().trace_id, "032x")
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with tracer.start_as_current_span("request") as span:
            assert span.is_recording()
        assert [s.name for s in exporter.get_finished_spans()] == ["request"]
