"""One order, one trace, across processes (issue 20 item 4): with an OTLP endpoint configured,
the API's placeOrder span, the shard applying the command, settlement committing its events
and the orderUpdates delivery to the subscriber are spans of one trace, each the child of the
step before, exported by four different processes to an OTLP/HTTP receiver run by the test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bourse.settings import Settings
from models.services import open_services
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset, next_update, order_updates, placed, trader, wait_book
from tests.support.server import free_port
from tests.support.stack import Stack


@dataclass(frozen=True)
class Received:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[Received]]]:
    """A minimal OTLP/HTTP trace receiver (protobuf, POST /v1/traces)."""
    spans: list[Received] = []

    async def export(request: Request) -> Response:
        batch = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in batch.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes
                 if a.key == "service.name"), "?",
            )  # fmt: skip
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    ids = (span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex())
                    spans.append(Received(service, span.name, *ids))
        body = ExportTraceServiceResponse().SerializeToString()
        return Response(body, media_type="application/x-protobuf")

    port = free_port()
    app = Starlette(routes=[Route("/v1/traces", export, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", spans
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task


async def test_an_order_is_one_trace_from_the_api_to_its_subscriber(
    settings: Settings, receiver: tuple[str, list[Received]]
) -> None:
    endpoint, spans = receiver
    stack = Stack(settings, shards=1)
    stack.env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"})
    try:
        await stack.start_all()
        s = stack.settings
        assert s.database_url
        assert s.redis_url
        sym = symbol("TRC")
        async with open_services(s, s.database_url, s.redis_url, pool_size=2) as services:
            await list_asset(services, sym, "30.00", liquidity=True)
            await wait_book(services, sym)
        async with stack.client() as api:
            token, _ = await trader(api, "1000")
            async with order_updates(api, token) as updates:
                order = await placed(
                    api, token, assetId=sym, orderType="BUY", orderSubType="MARKET", quantity="1"
                )
                events = set()
                while "FILL" not in events:
                    events.add((await next_update(updates))["event"])

        def chain() -> dict[str, Received] | None:
            place = [s for s in spans if s.name == "graphql mutation placeOrder"]
            for root in place:
                trace = {s.span_id: s for s in spans if s.trace_id == root.trace_id}
                steps: dict[str, Received] = {"api": root}
                for name, step in (("shard.apply", "shard"), ("settlement.apply", "settlement"),
                                   ("orderUpdates.deliver", "deliver")):  # fmt: skip
                    known = {p.span_id for p in steps.values()}
                    child = next(
                        (s for s in trace.values() if s.name == name and s.parent_id in known),
                        None,
                    )
                    if child is None:
                        break
                    steps[step] = child
                else:
                    return steps
            return None

        found = None
        for _ in range(100):  # exporters send every 200 ms
            found = chain()
            if found:
                break
            await asyncio.sleep(0.1)
        assert found is not None, sorted({(s.service, s.name) for s in spans})
        assert found["shard"].parent_id == found["api"].span_id
        assert found["settlement"].parent_id == found["shard"].span_id
        assert found["deliver"].parent_id == found["settlement"].span_id
        assert {found[k].service for k in found} == {
            "bourse-api",
            "bourse-shard",
            "bourse-settlement",
        }  # the API both starts the trace and delivers the update
        assert order["id"]
    finally:
        await stack.stop_all()


def test_log_lines_inside_a_span_carry_its_trace_and_span_ids() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from bourse.tracing import log_ids

    tracer = TracerProvider().get_tracer("test")
    assert "trace_id" not in log_ids(None, "info", {"event": "outside"})
    with tracer.start_as_current_span("work") as span:
        line = log_ids(None, "info", {"event": "inside"})
    ctx = span.get_span_context()
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")
