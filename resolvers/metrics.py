"""Counting and timing each GraphQL operation for Prometheus (bourse/metrics.py).

Labelled by the operation's first root field (``placeOrder``, ``portfolio``), which the schema
bounds, never by the client's operation name, which an attacker could make unbounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from graphql import FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from bourse import metrics


class OperationMetrics(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        ctx = self.execution_context
        field, kind = "unknown", "unknown"
        operation = None
        for definition in ctx.graphql_document.definitions if ctx.graphql_document else ():
            if isinstance(definition, OperationDefinitionNode):
                operation = definition
                break
        if operation is not None:
            kind = operation.operation.value
            first = next(
                (s for s in operation.selection_set.selections if isinstance(s, FieldNode)), None
            )
            field = first.name.value if first is not None else "unknown"
        result = ctx.result
        outcome = "ok"
        if result is not None and result.errors:
            ext = result.errors[0].extensions or {}
            outcome = str(ext.get("code") or "ERROR")
        metrics.graphql_operations.labels(field, kind, outcome).inc()
        metrics.graphql_seconds.labels(field).observe(time.perf_counter() - started)
