"""Property tests of extended-hours DAY orders in the engine: random limit orders (DAY or GTC,
flagged ``extended_hours`` or not, some crossing), cancels and expiries of both kinds.

The reference is what the order lifecycle implies, read from the commands and the engine's own
events: an EXPIRE_DAY with ``session: REGULAR`` expires exactly the live DAY orders that were
not flagged, an EXPIRE_DAY without it every live DAY order, both in acceptance order; GTC
orders never expire. A snapshot taken anywhere replays the rest byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.core import Engine, dump_engine, load_engine
from matching.core.events import FILL_MAKER, FILL_MAKER_DONE, FILL_TAKER, FILL_TAKER_DONE
from matching.wire import encode_event

PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def scripts(draw: st.DrawFn) -> list[dict[str, Any]]:
    cmds: list[dict[str, Any]] = [
        {"cmd": "ADD_ASSET", "asset_id": "X", "price_scale": 2, "tick_size": 1,
         "qty_scale": 0, "lot_size": 1, "collar_bps": 500, "stp": "CANCEL_NEWEST", "ts": 0},
    ]  # fmt: skip
    ids: list[str] = []
    for i in range(draw(st.integers(1, 60))):
        ts = i + 1
        kind = draw(st.integers(0, 99))
        if kind < 70:
            oid = f"o{i}"
            ids.append(oid)
            c: dict[str, Any] = {
                "cmd": "NEW_ORDER", "order_id": oid, "user_id": f"u{draw(st.integers(0, 3))}",
                "asset_id": "X", "side": draw(st.sampled_from(["BUY", "SELL"])),
                "order_type": "LIMIT", "tif": draw(st.sampled_from(["DAY", "GTC", "IOC"])),
                "quantity": draw(st.integers(1, 5)), "notional": None,
                "price": 100 + draw(st.integers(-3, 3)), "stop_price": None, "ts": ts,
            }  # fmt: skip
            if draw(st.booleans()):
                c["extended_hours"] = True
            cmds.append(c)
        elif kind < 85 and ids:
            cmds.append(
                {"cmd": "CANCEL", "order_id": draw(st.sampled_from(ids)), "asset_id": "X",
                 "ts": ts}
            )  # fmt: skip
        else:
            c = {"cmd": "EXPIRE_DAY", "asset_id": "X", "ts": ts}
            if draw(st.booleans()):
                c["session"] = "REGULAR"
            cmds.append(c)
    return cmds


@PROFILE
@given(scripts())
def test_expiries_end_exactly_the_live_day_orders_of_their_session(
    cmds: list[dict[str, Any]],
) -> None:
    engine = Engine()
    live: dict[str, tuple[int, str, bool]] = {}  # order id -> (acceptance order, tif, flagged)
    accepted = 0
    for c in cmds:
        if c["cmd"] == "EXPIRE_DAY":
            regular = c.get("session") == "REGULAR"
            expect = [
                oid
                for oid, (_, tif, flagged) in sorted(live.items(), key=lambda kv: kv[1][0])
                if tif == "DAY" and not (regular and flagged)
            ]
        events = engine.apply(c)
        if c["cmd"] == "EXPIRE_DAY":
            assert [e[2] for e in events] == expect
            assert {e[0] for e in events} <= {"EXPIRED"}
        for e in events:
            kind = e[0]
            if kind == "ACCEPTED":
                accepted += 1
                live[e[2]] = (accepted, c["tif"], bool(c.get("extended_hours")))
            elif kind == "FILL":
                if e[FILL_MAKER_DONE]:
                    live.pop(str(e[FILL_MAKER]), None)
                if e[FILL_TAKER_DONE]:
                    live.pop(str(e[FILL_TAKER]), None)
            elif kind in ("CANCELLED", "EXPIRED"):
                live.pop(e[2], None)
        assert set(live) == set(engine.orders)


@PROFILE
@given(scripts(), st.integers(0, 60))
def test_replay_from_a_snapshot_keeps_the_flags(cmds: list[dict[str, Any]], cut: int) -> None:
    cut = min(cut, len(cmds))
    whole = Engine()
    expected = [
        encode_event(ev, f"{i}-0", j)
        for i, c in enumerate(cmds)
        for j, ev in enumerate(whole.apply(c))
    ]
    head = Engine()
    got = [
        encode_event(ev, f"{i}-0", j)
        for i, c in enumerate(cmds[:cut])
        for j, ev in enumerate(head.apply(c))
    ]
    state = json.loads(json.dumps(dump_engine(head)))  # through JSON, as the shard stores it
    restored = load_engine(state)
    got += [
        encode_event(ev, f"{i}-0", j)
        for i, c in enumerate(cmds[cut:], start=cut)
        for j, ev in enumerate(restored.apply(c))
    ]
    assert got == expected
    assert dump_engine(restored) == dump_engine(whole)
