"""OpenTelemetry traces of an order across processes (issue 20 item 4).

One trace follows an order: the API's GraphQL operation → the outbox row and the shard's input
stream entry (the W3C ``traceparent`` travels in a ``trace`` field beside the command) → the
shard applying it (its events carry the shard span's context in their own ``trace`` field) →
settlement committing them → the ``orderUpdates`` delivery to the subscriber. Trace context never
enters the matching core or the canonical command and event texts, so replay stays
byte-identical; it rides in the stream entries' extra fields only.

Off unless an OTLP endpoint is configured (the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``): then each process exports its spans over OTLP/HTTP in
batches, named by ``OTEL_SERVICE_NAME`` or the process's own name. Log lines carry the current
``trace_id`` and ``span_id`` (``bourse.logs``), so a log search finds an order's whole path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
_configured = False


def enabled() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def active() -> bool:
    """Spans are being recorded and exported in this process."""
    return _configured


def configure(service: str) -> None:
    """Install the exporting tracer provider once per process (a no-op when not enabled)."""
    global _configured
    if _configured or not enabled():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


def shutdown() -> None:
    """Flush spans not yet exported (at a clean exit)."""
    provider = trace.get_tracer_provider()
    stop = getattr(provider, "shutdown", None)
    if callable(stop):
        stop()


def tracer() -> Tracer:
    return trace.get_tracer("bourse")


def current_parent() -> str | None:
    """The ``traceparent`` of the current span, if one is recording (to carry onwards)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def parent_of(span: Span) -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


@contextmanager
def child_span(
    name: str, traceparent: str | None, kind: SpanKind = SpanKind.CONSUMER, **attributes: Any
) -> Iterator[Span | None]:
    """A span continuing ``traceparent`` (None, or tracing off: nothing is recorded)."""
    if not traceparent or not _configured:
        yield None
        return
    carrier: MutableMapping[str, str] = {"traceparent": traceparent}
    parent = _propagator.extract(carrier)
    token = otel_context.attach(parent)
    try:
        with tracer().start_as_current_span(name, kind=kind, attributes=attributes) as span:
            yield span
    finally:
        otel_context.detach(token)


def log_ids(logger: object, method: str, event: MutableMapping[str, Any]) -> Any:
    """A structlog processor: the current trace and span ids on every line logged in a span."""
    span = trace.get_current_span()
    ctx = span.get_span_context()
    if ctx.is_valid:
        event.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event.setdefault("span_id", format(ctx.span_id, "016x"))
    return event
