"""PostgreSQL as the matching engine's system of record (``matching.record.Record``).

When a shard's Redis state is lost (``matching/rebuild.py``), ``EngineRecord.rebuild`` returns
the commands that rebuild its books, built from the durable facts only, in ONE transaction that
also fences settlement and records the new epoch:

1. **The fence.** The shard's settlement cursor (``settlement_cursors``, locked FOR UPDATE, as
   every settlement batch locks it first) moves to the events stream's current end: any event
   of the old state not yet settled is never applied. PostgreSQL wins: a fill the engine made
   but that was never settled did not happen (no user was shown it: users see fills only
   once settled); both orders are rebuilt as they stand and may trade again, under a new fill
   id. Nothing a user was shown is undone, because everything shown was settled first.
2. **The assets** of the shard: ``ADD_ASSET`` with ``fill_seq`` = the highest fill number
   already in ``fills`` (new fill ids never collide with settled ones), then a
   ``REFERENCE_PRICE`` at the last settled trade (else the asset's reference price).
3. **The open orders** (PENDING / PARTIALLY_FILLED, not waiting for a market open), in their
   original time priority (acceptance time; a triggered stop-limit from its trigger, an order
   from its latest replace that took a new place): each from its original ``NEW_ORDER``
   (the outbox row, the engine's own terms such as a market buy's cap), overlaid with the
   settled replaces' terms and a trailing stop's current stop. An order that had already
   triggered comes back as what it became (LIMIT or MARKET). A market, IOC or FOK order with
   nothing filled is sent as it was first sent (it executes now, ACCEPTED and all: its first
   command never reached an engine whose events were settled); every other order comes back
   ``restored``: no ACCEPTED again, its filled quantity carried over. A notional buy comes
   back with the cash it has left.
   Stock splits: an order whose ``NEW_ORDER`` row is older than an asset's ``SPLIT`` row comes
   back with the split's terms (``_split_terms``: the engine's rules, applied in outbox order
   with the settled replaces; its quantities are PostgreSQL's, adjusted in the split's own
   transaction). Each asset's ``SPLIT`` commands also go in right after its ``ADD_ASSET``,
   into the empty book, so the engine knows their ids (one the outbox sends again changes
   nothing), and the reference price is the last trade's only when it is newer than the
   asset's latest split (else the asset's split-adjusted reference price).
   A linked group (bracket, OTO, OCO) with any open member
   goes back once, at its root's priority, as the root's ``NEW_ORDER`` with every member's
   recorded state (``_restored_group``; the engine derives the group from it).
4. **What users asked and the engine never answered**: a pending replace's ``REPLACE`` and a
   requested cancel's ``CANCEL``, sent again after the orders (the engine ignores a repeated
   replace id; a cancel of an order no longer live is rejected harmlessly).

The liquidity provider's orders are not in PostgreSQL: its worker notices its quotes gone and
quotes again (``workers/liquidity.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN
from typing import Any

import structlog
from sqlalchemy import BigInteger, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import now_ns, utcnow
from bourse.keys import events_key, shard_for
from matching.codec import to_fixed
from matching.core.split import split_price, split_trail
from matching.record import Drift, RecordState, RecordUnavailableError
from matching.wire import cancel, decode_command
from models.assets import Asset
from models.availability import is_unavailable
from models.exchange import configure_commands, reference_command, scales
from models.matching_epochs import MatchingEpoch
from models.orders import (
    OPEN_STATUSES,
    Fill,
    Order,
    OrderClass,
    OrderReplacement,
    OrderSubType,
    OutboxEntry,
    ReplaceStatus,
    TimeInForce,
)
from models.settlement import SettlementCursor, stream_id_key

log = structlog.get_logger("bourse.engine_record")
_RESTING_TIFS = frozenset({TimeInForce.GTC, TimeInForce.DAY})
_TRIGGERED_TYPE = {"STOP_LOSS": "MARKET", "STOP_LIMIT": "LIMIT"}
# An order younger than this may still be on its way to the engine: not a drift yet.
DRIFT_GRACE = timedelta(seconds=5)


def _transient(exc: BaseException) -> bool:
    return is_unavailable(exc)  # the one test (models.availability)


@dataclass
class EngineRecord:
    """The record of the shards of one deployment (its Redis key prefix)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    prefix: str

    async def state(self, shard: int) -> RecordState:
        try:
            async with self.sessionmaker() as s:
                epoch = await s.get(MatchingEpoch, shard)
                cursor = await s.get(SettlementCursor, events_key(self.prefix, shard))
        except Exception as exc:
            if _transient(exc):
                raise RecordUnavailableError(f"PostgreSQL unreachable: {exc}") from exc
            raise
        return RecordState(
            epoch.epoch if epoch is not None else None,
            cursor.last_id if cursor is not None else None,
        )

    async def adopt(self, shard: int, epoch: str) -> None:
        try:
            async with self.sessionmaker() as s, s.begin():
                await _save_epoch(s, shard, epoch, "adopted", 0, None, rebuilt=False)
        except Exception as exc:
            if _transient(exc):
                raise RecordUnavailableError(f"PostgreSQL unreachable: {exc}") from exc
            raise

    async def rebuild(
        self, shard: int, shards: int, epoch: str, fence: str
    ) -> list[Mapping[str, Any]]:
        try:
            async with self.sessionmaker() as s, s.begin():
                await _fence(s, events_key(self.prefix, shard), fence)
                commands, orders = await rebuild_commands(s, shard, shards)
                await _save_epoch(s, shard, epoch, "rebuilt", orders, fence, rebuilt=True)
        except Exception as exc:
            if _transient(exc):
                raise RecordUnavailableError(f"PostgreSQL unreachable: {exc}") from exc
            raise
        log.warning(
            "matching shard rebuilt from PostgreSQL",
            shard=shard,
            epoch=epoch,
            orders=orders,
            commands=len(commands),
            fence=fence,
        )
        return commands

    async def drift(
        self, shard: int, shards: int, events_id: str, live: Mapping[str, int | None]
    ) -> Drift | None:
        try:
            async with self.sessionmaker() as s:
                return await _drift(s, self.prefix, shard, shards, events_id, live)
        except Exception as exc:
            if _transient(exc):
                raise RecordUnavailableError(f"PostgreSQL unreachable: {exc}") from exc
            raise

    async def restore(
        self, shard: int, shards: int, order_ids: frozenset[str]
    ) -> list[Mapping[str, Any]]:
        ids = [i for i in (_uuid(x) for x in order_ids) if i is not None]
        try:
            async with self.sessionmaker() as s:
                commands, _ = await rebuild_commands(s, shard, shards, only=ids)
        except Exception as exc:
            if _transient(exc):
                raise RecordUnavailableError(f"PostgreSQL unreachable: {exc}") from exc
            raise
        return [
            c for c in commands if c.get("cmd") != "ADD_ASSET" and c.get("cmd") != "REFERENCE_PRICE"
        ]

    async def count_repairs(self, shard: int, repairs: int) -> None:
        try:
            async with self.sessionmaker() as s, s.begin():
                await s.execute(
                    update(MatchingEpoch)
                    .where(MatchingEpoch.shard == shard)
                    .values(repairs=MatchingEpoch.repairs + repairs, updated_at=utcnow())
                )
        except Exception as exc:
            if _transient(exc):
                raise RecordUnavailableError(f"PostgreSQL unreachable: {exc}") from exc
            raise


async def _drift(
    s: AsyncSession,
    prefix: str,
    shard: int,
    shards: int,
    events_id: str,
    live: Mapping[str, int | None],
) -> Drift | None:
    """See ``matching.record.Record.drift``."""
    cursor = await s.get(SettlementCursor, events_key(prefix, shard))
    if events_id != "0-0" and (
        cursor is None or stream_id_key(cursor.last_id) < stream_id_key(events_id)
    ):
        return None
    assets = {
        a.symbol: a
        for a in (await s.scalars(select(Asset))).all()
        if shard_for(a.symbol, shards) == shard
    }
    epoch = await s.get(MatchingEpoch, shard)
    if not assets or epoch is None:
        return Drift(frozenset(), frozenset())
    now = utcnow()
    open_rows = (
        await s.execute(
            select(Order.id, Order.parent_id, Order.order_class).where(
                Order.asset_id.in_(list(assets)),
                Order.status.in_(list(OPEN_STATUSES)),
                Order.created_at < now - DRIFT_GRACE,
                Order.created_at >= epoch.started_at,  # older ones were in the rebuild
                (Order.queued_until.is_(None)) | (Order.queued_until <= now - DRIFT_GRACE),
            )
        )
    ).all()
    missing = {str(i) for i, _, _ in open_rows} - set(live)
    # A linked order goes back with its group (the group's one command): only when none of
    # the group is live in the engine (a group the engine half has is not put together here).
    roots = {
        parent or i
        for i, parent, kind in open_rows
        if kind is not OrderClass.SIMPLE and str(i) in missing
    }
    if roots:
        for i, parent in (
            await s.execute(
                select(Order.id, Order.parent_id).where(
                    Order.id.in_(list(roots)) | Order.parent_id.in_(list(roots))
                )
            )
        ).all():
            if str(i) in live:
                root = parent or i
                split = {str(m) for m, p, _ in open_rows if (p or m) == root} & missing
                if split:
                    log.error(
                        "linked group partly live in the engine: not put back",
                        live=str(i),
                        missing=sorted(split),
                    )
                missing -= split
    ids = [i for i in (_uuid(x) for x in live) if i is not None]
    ended: set[str] = set()
    resync: dict[str, tuple[int, int]] = {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        rows = await s.execute(
            select(
                Order.id,
                Order.asset_id,
                Order.status,
                Order.order_class,
                Order.quantity,
                Order.filled_quantity,
            ).where(Order.id.in_(chunk))
        )
        for i, symbol, status, kind, quantity, filled_quantity in rows.all():
            oid = str(i)
            asset = assets.get(symbol)
            if asset is None:
                continue
            sc = scales(asset)
            filled = to_fixed(filled_quantity, sc.qty_scale, ROUND_DOWN)
            linked = kind is not OrderClass.SIMPLE
            if status not in OPEN_STATUSES:
                if linked:  # ended alone: a CANCEL would take its group with it
                    resync[oid] = (filled, 0)
                else:
                    ended.add(oid)
                continue
            engine_remaining = live.get(oid)
            if engine_remaining is None or quantity is None:
                continue  # a waiting leg (nothing to compare yet), a notional buy
            remaining = to_fixed(quantity, sc.qty_scale, ROUND_DOWN) - filled
            if remaining != engine_remaining and remaining > 0:
                resync[oid] = (filled, remaining)
    return Drift(frozenset(missing), frozenset(ended), resync)


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


async def _fence(s: AsyncSession, stream: str, fence: str) -> None:
    """Settlement of ``stream`` skips every entry at or before ``fence`` from now on."""
    cursor = await s.get(SettlementCursor, stream, with_for_update=True)
    if cursor is None:
        s.add(SettlementCursor(stream=stream, last_id=fence, updated_at=utcnow()))
    elif stream_id_key(fence) > stream_id_key(cursor.last_id):
        cursor.last_id = fence
        cursor.updated_at = utcnow()
    await s.flush()


async def _save_epoch(
    s: AsyncSession,
    shard: int,
    epoch: str,
    origin: str,
    orders: int,
    fence: str | None,
    *,
    rebuilt: bool,
) -> None:
    stmt = insert(MatchingEpoch).values(
        shard=shard,
        epoch=epoch,
        origin=origin,
        orders=orders,
        rebuilds=1 if rebuilt else 0,
        fence=fence,
        repairs=0,
        started_at=utcnow(),
        updated_at=utcnow(),
    )
    await s.execute(
        stmt.on_conflict_do_update(
            index_elements=[MatchingEpoch.shard],
            set_={
                "epoch": epoch,
                "origin": origin,
                "orders": orders,
                "fence": fence,
                "started_at": utcnow(),
                "updated_at": utcnow(),
                "rebuilds": MatchingEpoch.rebuilds + (1 if rebuilt else 0),
            },
        )
    )


async def rebuild_commands(
    s: AsyncSession, shard: int, shards: int, *, only: Sequence[uuid.UUID] | None = None
) -> tuple[list[Mapping[str, Any]], int]:
    """The commands that rebuild shard ``shard`` of ``shards`` from PostgreSQL, and how many
    open orders they carry (see the module's docstring); ``only``: just these orders (the
    reconciler's repairs)."""
    assets = [
        a
        for a in (await s.scalars(select(Asset).order_by(Asset.symbol))).all()
        if shard_for(a.symbol, shards) == shard
    ]
    if not assets:
        return [], 0
    symbols = [a.symbol for a in assets]
    by_symbol = {a.symbol: a for a in assets}
    ts = now_ns()
    commands: list[Mapping[str, Any]] = []
    seqs = await _fill_seqs(s, symbols)
    last_prices = await _last_prices(s, symbols)
    # Stock splits (their SPLIT commands in the outbox, by asset): an order in the book when
    # one was written comes back with the split's terms (the engine's own rules).
    splits: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    split_at: dict[str, datetime] = {}  # each asset's latest split
    for row in (
        await s.scalars(
            select(OutboxEntry)
            .where(
                OutboxEntry.asset_id.in_(symbols),
                OutboxEntry.command.contains('"cmd":"SPLIT"'),
            )
            .order_by(OutboxEntry.id)
        )
    ).all():
        cmd = decode_command(row.command)
        if cmd.get("cmd") == "SPLIT":
            splits.setdefault(row.asset_id, []).append((row.id, cmd))
            split_at[row.asset_id] = row.created_at
    for a in assets:
        add, _reference = configure_commands(a, ts)
        commands.append({**add, "fill_seq": seqs.get(a.symbol, 0)})
        # The asset's splits, into its still empty book: the engine remembers their ids, so
        # one the outbox sends again is ignored (the orders below already carry its terms).
        commands.extend({**c, "ts": ts} for _, c in splits.get(a.symbol, []))
        price, at = last_prices.get(a.symbol, (a.reference_price, None))
        if at is not None and a.symbol in split_at and at < split_at[a.symbol]:
            price = a.reference_price  # the last trade was in pre-split shares
        commands.append(reference_command(a, price, ts))

    now = utcnow()
    orders = (
        await s.scalars(
            select(Order)
            .where(
                Order.asset_id.in_(symbols),
                Order.status.in_(list(OPEN_STATUSES)),
                (Order.queued_until.is_(None)) | (Order.queued_until <= now),
                *([] if only is None else [Order.id.in_(list(only))]),
            )
            .order_by(Order.created_at, Order.id)
        )
    ).all()
    if not orders:
        return commands, 0
    # Linked orders go back as groups: every row of a group with an open member, the final
    # ones too (their fills decide the others' state), under its root's NEW_ORDER.
    roots = {o.parent_id or o.id for o in orders if o.order_class is not OrderClass.SIMPLE}
    members: dict[uuid.UUID, list[Order]] = {}
    if roots:
        for member in (
            await s.scalars(
                select(Order).where(
                    (Order.id.in_(list(roots))) | (Order.parent_id.in_(list(roots)))
                )
            )
        ).all():
            members.setdefault(member.parent_id or member.id, []).append(member)
    simple = [o for o in orders if o.order_class is OrderClass.SIMPLE]
    group_roots = [ms for r in roots if (ms := members.get(r))]
    ids = [o.id for o in simple] + [r for r in roots]
    outbox: dict[Any, list[dict[str, Any]]] = {}
    positions: dict[Any, list[int]] = {}  # each command's outbox row id, in the same order
    for row in (
        await s.scalars(
            select(OutboxEntry).where(OutboxEntry.order_id.in_(ids)).order_by(OutboxEntry.id)
        )
    ).all():
        outbox.setdefault(row.order_id, []).append(decode_command(row.command))
        positions.setdefault(row.order_id, []).append(row.id)
    replacements: dict[Any, list[OrderReplacement]] = {}
    for r in (
        await s.scalars(
            select(OrderReplacement)
            .where(OrderReplacement.order_id.in_(ids))
            .order_by(OrderReplacement.created_at, OrderReplacement.id)
        )
    ).all():
        replacements.setdefault(r.order_id, []).append(r)

    restored: list[tuple[datetime, str, Mapping[str, Any]]] = []
    after: list[Mapping[str, Any]] = []
    linked_open = 0  # a group's open orders beyond the one command that carries them
    for group in group_roots:
        root = next((m for m in group if m.parent_id is None), None)
        if root is None:
            continue
        first = next((c for c in outbox.get(root.id, []) if c.get("cmd") == "NEW_ORDER"), None)
        if first is None:
            log.error(
                "open linked order without its NEW_ORDER in the outbox", order_id=str(root.id)
            )
            continue
        root_rows = positions.get(root.id, [])
        root_row = root_rows[outbox[root.id].index(first)]
        since = [c for i, c in splits.get(root.asset_id, []) if i > root_row]
        if since:  # a split since: the engine's terms for prices, PostgreSQL's quantities
            first = dict(first)
            for step in since:
                _split_terms(first, step, by_symbol[root.asset_id])
            if root.quantity is not None and first.get("quantity") is not None:
                sc = scales(by_symbol[root.asset_id])
                first["quantity"] = to_fixed(root.quantity, sc.qty_scale, ROUND_DOWN)
        cmd = _restored_group(root, group, by_symbol[root.asset_id], first)
        restored.append((root.created_at, str(root.id), cmd))
        linked_open += sum(1 for m in group if m.status in OPEN_STATUSES) - 1
        for m in group:
            if m.cancel_requested_at is not None and m.status in OPEN_STATUSES:
                after.append(dict(cancel(str(m.id), m.asset_id, ts=ts)))
    for o in simple:
        cmds = outbox.get(o.id, [])
        first = next((c for c in cmds if c.get("cmd") == "NEW_ORDER"), None)
        if first is None:
            log.error("open order without its NEW_ORDER in the outbox", order_id=str(o.id))
            continue
        asset = by_symbol[o.asset_id]
        rows = positions.get(o.id, [])
        first_row = rows[cmds.index(first)]
        timeline = {
            str(c.get("replace_id")): rows[i]
            for i, c in enumerate(cmds)
            if c.get("cmd") == "REPLACE"
        }
        later = [(i, c) for i, c in splits.get(o.asset_id, []) if i > first_row]
        cmd, priority = _restored_command(
            o, asset, first, cmds, replacements.get(o.id, []), later, timeline
        )
        restored.append((priority, str(o.id), cmd))
        pending = [r for r in replacements.get(o.id, []) if r.status == ReplaceStatus.PENDING]
        for r in pending:
            replace_cmd = next(
                (c for c in cmds if c.get("cmd") == "REPLACE" and c.get("replace_id") == str(r.id)),
                None,
            )
            if replace_cmd is not None:
                after.append(replace_cmd)
        if o.cancel_requested_at is not None:
            after.append(dict(cancel(str(o.id), o.asset_id, ts=ts)))
    restored.sort(key=lambda item: (item[0], item[1]))
    commands.extend(c for _, _, c in restored)
    commands.extend(after)
    return commands, len(restored) + linked_open


def _restored_group(
    root: Order, rows: Sequence[Order], asset: Asset, first: dict[str, Any]
) -> dict[str, Any]:
    """A linked group's command: its root's NEW_ORDER (the engine's terms), ``restored``, the
    root's fills (``ended``: final) and each leg's quantity, fills and end as recorded; the
    engine derives the group's state from them (``Engine.restore_group``). A market entry
    (a LIMIT IOC) that never executed goes as it was first sent: it executes now."""
    sc = scales(asset)
    by_id = {str(m.id): m for m in rows}
    filled = to_fixed(root.filled_quantity, sc.qty_scale, ROUND_DOWN)
    ended = root.status not in OPEN_STATUSES
    never_ran = all(m.status in OPEN_STATUSES and not m.filled_quantity for m in rows)
    if str(first.get("tif")) not in _RESTING_TIFS and never_ran:
        return first
    cmd = dict(first)
    cmd["restored"] = True
    cmd["filled"] = filled
    if ended:
        cmd["ended"] = True
    legs: list[dict[str, Any]] = []
    for spec in first.get("legs") or []:
        spec = dict(spec)
        m = by_id.get(str(spec.get("order_id")))
        if m is None:  # not written (cannot happen: legs are written with their root)
            spec.update(quantity=0, filled=0, ended=True)
        else:
            kind = str(spec.get("order_type"))
            if m.triggered_at is not None and kind in _TRIGGERED_TYPE:
                spec["order_type"] = _TRIGGERED_TYPE[kind]  # what it became
                if spec["order_type"] == "MARKET":
                    spec["price"] = None
                spec["stop_price"] = None
            spec["quantity"] = to_fixed(m.quantity or 0, sc.qty_scale, ROUND_DOWN)
            spec["filled"] = to_fixed(m.filled_quantity, sc.qty_scale, ROUND_DOWN)
            spec["ended"] = m.status not in OPEN_STATUSES
        legs.append(spec)
    cmd["legs"] = legs
    return cmd


def _restored_command(
    o: Order,
    asset: Asset,
    first: dict[str, Any],
    cmds: Sequence[dict[str, Any]],
    replacements: Sequence[OrderReplacement],
    splits: Sequence[tuple[int, Mapping[str, Any]]] = (),
    replace_rows: Mapping[str, int] | None = None,
) -> tuple[dict[str, Any], datetime]:
    """The command that puts ``o`` back in the book as it stands, and its time priority.
    ``splits``: the asset's SPLIT commands written after the order's NEW_ORDER (outbox row id,
    command), applied in outbox order with the settled replaces (``replace_rows``: each
    REPLACE's outbox row id), so a replace after a split is not split again."""
    sc = scales(asset)
    cmd = dict(first)
    priority = o.created_at
    by_id = {c.get("replace_id"): c for c in cmds if c.get("cmd") == "REPLACE"}
    steps: list[tuple[int, Mapping[str, Any], OrderReplacement | None]] = [
        (i, c, None) for i, c in splits
    ]
    for r in replacements:
        if r.status != ReplaceStatus.REPLACED:
            continue
        applied = by_id.get(str(r.id))
        if applied is None:
            continue
        steps.append(((replace_rows or {}).get(str(r.id), 0), applied, r))
    steps.sort(key=lambda step: step[0])
    for _, step, replaced in steps:
        if replaced is None:
            _split_terms(cmd, step, asset)
            continue
        for key in ("quantity", "price", "stop_price", "tif", "trail_amount", "trail_bps"):
            if step.get(key) is not None:
                cmd[key] = step[key]
        if not replaced.kept_priority:
            priority = max(priority, replaced.settled_at or replaced.created_at)
    if splits and o.quantity is not None and cmd.get("quantity") is not None:
        cmd["quantity"] = to_fixed(o.quantity, sc.qty_scale, ROUND_DOWN)  # split-adjusted
    filled = to_fixed(o.filled_quantity, sc.qty_scale, ROUND_DOWN)
    kind = str(cmd.get("order_type"))
    if o.sub_type is OrderSubType.TRAILING_STOP and o.stop_price is not None:
        cmd["stop_price"] = to_fixed(o.stop_price, sc.price_scale, ROUND_DOWN)
    if o.triggered_at is not None and kind in ("STOP_LOSS", "STOP_LIMIT", "TRAILING_STOP"):
        became = _TRIGGERED_TYPE.get(kind) or ("LIMIT" if cmd.get("price") else "MARKET")
        cmd["order_type"] = became
        cmd["stop_price"] = None
        cmd.pop("trail_amount", None)
        cmd.pop("trail_bps", None)
        priority = max(priority, o.triggered_at)
        kind = became
    rests = kind != "MARKET" and str(cmd.get("tif")) in _RESTING_TIFS
    if not rests and not filled and o.filled_value == 0:
        return first, priority  # never executed: send it as it was first sent
    if cmd.get("notional") is not None and cmd.get("quantity") is None:
        spent = to_fixed(o.filled_value, sc.price_scale, ROUND_DOWN)
        cmd["notional"] = max(0, int(cmd["notional"]) - spent)
        cmd["restored"] = True
        cmd["filled"] = 0
        return cmd, priority
    cmd["restored"] = True
    cmd["filled"] = filled
    return cmd, priority


def _split_terms(cmd: dict[str, Any], split: Mapping[str, Any], asset: Asset) -> None:
    """A restored command's prices after a SPLIT, by the engine's rules (its quantity is
    PostgreSQL's, already split-adjusted in the split's transaction)."""
    sc = scales(asset)
    n, d = int(split.get("numerator") or 1), int(split.get("denominator") or 1)
    tick = to_fixed(asset.tick_size, sc.price_scale)
    buy = cmd.get("side") == "BUY"
    if cmd.get("price"):
        cmd["price"] = split_price(int(cmd["price"]), n, d, tick, not buy)
    if cmd.get("stop_price"):
        cmd["stop_price"] = split_price(int(cmd["stop_price"]), n, d, tick, buy)
    if cmd.get("trail_amount"):
        cmd["trail_amount"] = split_trail(int(cmd["trail_amount"]), n, d, tick)
    legs = cmd.get("legs")
    if isinstance(legs, list):
        leg_buy = buy if cmd.get("order_class") == "OCO" else not buy
        cmd["legs"] = [
            {
                **leg,
                "price": split_price(int(leg.get("price") or 0), n, d, tick, not leg_buy) or None,
                "stop_price": split_price(int(leg.get("stop_price") or 0), n, d, tick, leg_buy)
                or None,
            }
            for leg in legs
            if isinstance(leg, Mapping)
        ]


async def _fill_seqs(s: AsyncSession, symbols: Sequence[str]) -> dict[str, int]:
    """The highest engine fill number already settled per asset (fill ids are
    ``<asset>:<n>``)."""
    number = func.substring(Fill.id, text("'[0-9]+$'")).cast(BigInteger)
    rows = await s.execute(
        select(Fill.asset_id, func.max(number))
        .where(Fill.asset_id.in_(symbols))
        .group_by(Fill.asset_id)
    )
    return {sym: int(n or 0) for sym, n in rows.all()}


async def _last_prices(s: AsyncSession, symbols: Sequence[str]) -> dict[str, Any]:
    """Each asset's last settled trade (price, executed at): the mark the engine had, near
    enough."""
    latest = (
        select(Fill.asset_id, Fill.price, Fill.executed_at)
        .where(Fill.asset_id.in_(symbols))
        .distinct(Fill.asset_id)
        .order_by(Fill.asset_id, Fill.executed_at.desc(), Fill.id.desc())
    )
    return {sym: (price, at) for sym, price, at in (await s.execute(latest)).all()}
