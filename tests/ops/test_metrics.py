"""Prometheus metrics from every process, summed on the API's /metrics (issue 20 item 4): after
a trade, the order placed (API), the commands applied (shard) and the fill settled (settlement)
are all counted on the one scrape target; /metrics is for loopback or a token, not the public;
the alert rules only name series the platform exports."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request

from bff.metrics import _allowed
from bourse import metrics
from bourse.settings import Settings
from models.services import open_services
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset, placed, trader, wait_book, wait_order
from tests.support.stack import running_stack

ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def total(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    return sum(
        v for (n, ls), v in found.items()
        if n == name and all((k, val) in ls for k, val in labels.items())
    )  # fmt: skip


async def test_a_trade_is_counted_by_every_process_on_one_scrape(
    settings: Settings, tmp_path: Path
) -> None:
    async with running_stack(settings, shards=1, metrics_dir=tmp_path / "metrics") as stack:
        s = stack.settings
        assert s.database_url
        assert s.redis_url
        sym = symbol("MET")
        async with open_services(s, s.database_url, s.redis_url, pool_size=2) as services:
            await list_asset(services, sym, "20.00", liquidity=True)
            await wait_book(services, sym)
        async with stack.client() as api:
            token, _ = await trader(api, "1000")
            order = await placed(
                api, token, assetId=sym, orderType="BUY", orderSubType="MARKET", quantity="2"
            )
            await wait_order(api, token, order["id"], {"EXECUTED"})
            refused = await api.gql(
                "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { errors { code } } }",
                {
                    "i": {
                        "assetId": "NO-SUCH",
                        "orderType": "BUY",
                        "orderSubType": "MARKET",
                        "quantity": "1",
                    }
                },
                token,
            )
            assert refused["data"]["placeOrder"]["errors"][0]["code"] == "UNKNOWN_ASSET"

            async with httpx.AsyncClient(base_url=stack.base_url) as http:
                found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
                for _ in range(50):  # settlement counts the fill once it has committed it
                    response = await http.get("/metrics")
                    assert response.status_code == 200
                    found = samples(response.text)
                    if total(found, "bourse_fills_settled_total") >= 1:
                        break
                    await wait_a_little()
            # `bourse status` sees every component up; then one shard dies and it says so.
            code, out = await status(stack.env)
            assert code == 0, out
            assert "ok    shard-0" in out
            await stack.kill("shard-0")
            for _ in range(100):
                code, out = await status(stack.env)
                if code == 1:
                    break
                await wait_a_little()
            assert "FAIL  shard-0" in out, out
            assert "ok    postgresql" in out
    assert total(found, "bourse_mutations_total", mutation="placeOrder", outcome="ok") >= 1
    assert total(found, "bourse_mutations_total", mutation="placeOrder",
                 outcome="UNKNOWN_ASSET") >= 1  # fmt: skip
    assert total(found, "bourse_graphql_operation_seconds_count", field="placeOrder") >= 2
    assert total(found, "bourse_shard_commands_total", shard="0") >= 1  # the shard's process
    assert total(found, "bourse_fills_settled_total", shard="0") >= 1  # settlement's process
    assert total(found, "bourse_orders_finished_total", status="EXECUTED") >= 1
    assert total(found, "bourse_db_connections_in_use") >= 0


async def status(env: dict[str, str]) -> tuple[int, str]:
    import asyncio
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bourse.app.cli", "status", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def wait_a_little() -> None:
    import asyncio

    await asyncio.sleep(0.2)


def _request(host: str, authorization: str | None = None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return Request({"type": "http", "client": (host, 1234), "headers": headers})


def test_metrics_are_for_loopback_or_a_token_holder() -> None:
    assert _allowed(_request("127.0.0.1"), None)
    assert not _allowed(_request("203.0.113.9"), None)
    assert not _allowed(_request("203.0.113.9", "Bearer wrong"), "s3cret")
    assert _allowed(_request("203.0.113.9", "Bearer s3cret"), "s3cret")


def test_alert_rules_and_dashboard_name_only_exported_series() -> None:
    exported = {
        name
        for metric in vars(metrics).values()
        if hasattr(metric, "_name") and hasattr(metric, "_type")
        for name in _series(metric._name, metric._type)
    }
    rules = yaml.safe_load((ROOT / "ops" / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = (ROOT / "ops" / "grafana" / "bourse.json").read_text()
    import re

    for text in [*exprs, dashboard]:
        for used in set(re.findall(r"\bbourse_[a-z_]+", text)):
            assert used in exported, f"{used} is not a series Bourse exports"
    assert len(exprs) >= 6


def _series(name: str, kind: str) -> list[str]:
    if kind == "counter":
        return [f"{name}_total", name]
    if kind == "histogram":
        return [f"{name}_bucket", f"{name}_count", f"{name}_sum"]
    return [name]
