"""Counting, timing and tracing each GraphQL operation (bourse/metrics.py, bourse/tracing.py).

Labelled by the operation's first root field (``placeOrder``, ``portfolio``), which the schema
bounds, never by the client's operation name, which an attacker could make unbounded. With
tracing on, the operation is a server span: an order's trace starts here (the outbox row
records it and the command carries it to the shard).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from graphql import FieldNode, OperationDefinitionNode
from opentelemetry.trace import SpanKind
from strawberry.extensions import SchemaExtension

from bourse import metrics, tracing


class OperationTelemetry(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        started = time.perf_counter()
        ctx = self.execution_context
        field, kind = "unknown", "unknown"
        for definition in ctx.graphql_document.definitions if ctx.graphql_document else ():
            if isinstance(definition, OperationDefinitionNode):
                kind = definition.operation.value
                first = next(
                    (s for s in definition.selection_set.selections if isinstance(s, FieldNode)),
                    None,
                )
                field = first.name.value if first is not None else "unknown"
                break
        with contextlib.ExitStack() as stack:
            if tracing.active():
                stack.enter_context(
                    tracing.tracer().start_as_current_span(
                        f"graphql {kind} {field}",
                        kind=SpanKind.SERVER,
                        attributes={"graphql.operation.type": kind, "graphql.field": field},
                    )
                )
            yield
        result = ctx.result
        outcome = "ok"
        if result is not None and result.errors:
            ext = result.errors[0].extensions or {}
            outcome = str(ext.get("code") or "ERROR")
        metrics.graphql_operations.labels(field, kind, outcome).inc()
        metrics.graphql_seconds.labels(field).observe(time.perf_counter() - started)
