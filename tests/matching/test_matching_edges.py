"""The edges: Decimal codec, wire encoding, key names and the shard mapping."""

from __future__ import annotations

import json
import zlib
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bourse import keys
from matching import codec, wire
from matching.core import Engine


def test_to_fixed_is_exact_unless_asked_to_round() -> None:
    assert codec.to_fixed(Decimal("187.25"), 2) == 18725
    assert codec.to_fixed("0.000001", 6) == 1
    assert codec.to_fixed(3, 4) == 30000
    with pytest.raises(ValueError, match="decimal places"):
        codec.to_fixed("1.005", 2)
    assert codec.to_fixed("1.009", 2, ROUND_DOWN) == 100
    with pytest.raises(TypeError):
        codec.to_fixed(1.5, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        codec.to_fixed("NaN", 2)


@given(st.integers(-(10**15), 10**15), st.integers(0, 9))
def test_fixed_round_trip(value: int, scale: int) -> None:
    d = codec.from_fixed(value, scale)
    assert codec.to_fixed(d, scale) == value
    assert Decimal(codec.format_fixed(value, scale)) == d
    assert "E" not in codec.format_fixed(value, scale)


def test_asset_scales_and_add_asset_command() -> None:
    s = codec.asset_scales("0.05", "0.0001")
    assert s == codec.AssetScales(price_scale=2, tick_size=5, qty_scale=4, lot_size=1)
    assert s.price("187.25") == 18725
    with pytest.raises(ValueError, match="tick"):
        s.price("187.26")
    assert s.quantity("0.5") == 5000
    assert s.notional("100.009") == 10000  # cash rounds down
    assert s.price_decimal(18725) == Decimal("187.25")
    assert codec.asset_scales("1", "1") == (0, 1, 0, 1)
    cmd = codec.add_asset_command("AAPL", Decimal("0.01"), Decimal("0.000001"), ts=5)
    assert cmd["price_scale"] == 2
    assert cmd["qty_scale"] == 6
    assert cmd["tick_size"] == 1
    e = Engine()
    assert e.apply(cmd)[0][0] == "ASSET_CONFIGURED"
    assert codec.fill_value(18725, 500_000, 2, 6) == Decimal("93.625")


def test_command_encoding_is_canonical_and_validated() -> None:
    cmd = wire.new_order("o1", "u1", "AAPL", "BUY", "LIMIT", "GTC", quantity=5, price=100, ts=7)
    raw = wire.encode_command(cmd)
    assert raw == json.dumps(cmd, sort_keys=True, separators=(",", ":"))
    assert wire.decode_command(raw) == cmd
    with pytest.raises(ValueError, match="float"):
        wire.encode_command({**cmd, "price": 1.5})
    with pytest.raises(ValueError, match="unknown command"):
        wire.encode_command({"cmd": "NOPE", "ts": 1})
    with pytest.raises(ValueError, match="asset_id"):
        wire.encode_command({"cmd": "CANCEL", "order_id": "o", "ts": 1})
    assert wire.decode_command("{not json") == {}
    assert wire.decode_command("[1]") == {}
    assert wire.decode_command(None) == {}


def test_wire_event_fields() -> None:
    e = Engine()
    e.add_asset("AAPL", 2, 1, 0)
    e.new_order("s", "u2", "AAPL", "SELL", "LIMIT", "GTC", 5, 100, ts=1)
    events = e.new_order("b", "u1", "AAPL", "BUY", "MARKET", "IOC", 3, ts=2)
    accepted, fill = (wire.decode_event(s) for s in wire.encode_events(events, "9-1"))
    assert accepted == {
        "event": "ACCEPTED",
        "input_id": "9-1",
        "idx": 0,
        "asset_id": "AAPL",
        "order_id": "b",
        "user_id": "u1",
        "side": "BUY",
        "order_type": "MARKET",
        "tif": "IOC",
        "quantity": 3,
        "notional": None,
        "price": None,
        "stop_price": None,
        "ts": 2,
    }
    assert fill == {
        "event": "FILL",
        "input_id": "9-1",
        "idx": 1,
        "asset_id": "AAPL",
        "order_id": "b",
        "fill_id": "AAPL:1",
        "maker_order_id": "s",
        "taker_order_id": "b",
        "maker_user_id": "u2",
        "taker_user_id": "u1",
        "taker_side": "BUY",
        "price": 100,
        "quantity": 3,
        "maker_remaining": 2,
        "taker_remaining": 0,
        "maker_done": False,
        "taker_done": True,
        "ts": 2,
    }


def test_shard_for_is_stable_crc32() -> None:
    assert keys.shard_for("AAPL", 1) == 0
    assert keys.shard_for("AAPL", 8) == zlib.crc32(b"AAPL") % 8 == 4  # 3060094812 % 8
    assert keys.shard_for("BTC-USD", 4) == zlib.crc32(b"BTC-USD") % 4
    with pytest.raises(ValueError, match="shards"):
        keys.shard_for("AAPL", 0)


def test_key_names_carry_the_shard_hash_tag() -> None:
    assert keys.input_key("bourse:", 3) == "bourse:matching:{3}:in"
    assert keys.events_key("bourse:", 3) == "bourse:matching:{3}:events"
    assert keys.snapshot_key("", 0) == "matching:{0}:snapshot"
    assert keys.applied_key("p:", 1) == "p:matching:{1}:applied"
    assert keys.heartbeat_key("p:", 1) == "p:matching:{1}:heartbeat"
    assert keys.book_key("p:", 2, "AAPL") == "p:matching:{2}:book:AAPL"
    assert keys.depth_channel("p:", "AAPL") == "p:matching:depth:AAPL"
