"""Settlement: the shards' events applied to orders and the ledger, exactly once.

``Settlement.apply`` runs inside ONE PostgreSQL transaction per batch (the caller's):

- Each events stream has a cursor row (``settlement_cursors``): entries at or before it were
  applied by an earlier transaction whose acknowledgement was lost, and are skipped. The cursor
  moves in the same transaction as the effects, so a batch is applied entirely or not at all.
- Each fill is inserted into ``fills`` under its engine fill id (primary key, ON CONFLICT DO
  NOTHING): a fill seen again changes nothing, whatever the cursor says.
- Set-based: a batch costs a fixed number of statements whatever its size (cursors, the locks,
  one INSERT of fills, then ``LedgerBatch``'s entries, postings, accounts and holds, the orders,
  then ``positions.apply_fills``); every effect is computed in memory, in the events' order.
- Locks: every ledger account the batch touches is locked first, in id order (the ledger's
  rule), then the orders, in id order, then their holds; nothing takes them in another order.
- A fill moves cash (price x quantity rounded DOWN to the minor unit) and shares between the two
  parties in one balanced journal entry; the buyer's cash hold and the seller's share hold shrink
  by what the fill used, before the postings. The liquidity provider's side goes to the
  platform's LIQUIDITY accounts.
- An order that ends (filled, cancelled, expired, rejected) releases what is left of its hold.
- REPLACED gives the order its new terms (the user's, from its ``order_replacements`` row) and
  trims its hold to exactly what the remaining quantity needs at the engine's price (the
  request reserved at least that, from a remaining quantity that can only have shrunk since);
  REPLACE_REJECTED leaves the order as it was and trims the hold back the same way (an order
  no longer live has already released it). STOP_MOVED moves a trailing stop's ``stop_price``.
- Linked orders (``models.orders.linked``): a bracket's / OTO's entry fill also reserves the
  shares it brings for the exits, on their ONE shared hold (opened with the first fill), in the
  same step that credits them; RESIZED sets a leg's quantity (ACTIVATED: its entry filled;
  OCO: its sibling filled, they sell the same shares). The legs' fills consume the shared hold,
  and the leg that ends the group releases what is left.

It returns the notices to publish to users after the commit (``orderUpdates``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any, Final

import structlog
from sqlalchemy import String, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from bourse.money import fill_cash, plain, round_cash
from matching.codec import AssetScales, from_fixed
from matching.wire import (
    AcceptedEvent,
    CancelledEvent,
    ExpiredEvent,
    FillEvent,
    OrderEndEvent,
    RejectedEvent,
    ReplacedEvent,
    ReplaceRejectedEvent,
    ResizedEvent,
    SplitAdjustedEvent,
    SplitAppliedEvent,
    StopMovedEvent,
    TriggeredEvent,
    WireEvent,
)
from models import bulk
from models.assets import Asset
from models.base import Base
from models.corporate_actions import CorporateAction, CorporateActionKind, CorporateActionStatus
from models.debits import Shortfall, record_shortfalls
from models.exchange import scales
from models.ledger import ZERO, AccountKind, Ledger, LedgerAccount, LedgerBatch, Leg
from models.notifications.actions import NotificationView
from models.notifications.actions import record as record_notifications
from models.notifications.messages import order_draft
from models.orders import (
    FINAL_STATUSES,
    LIQUIDITY_PROVIDER,
    Order,
    OrderClass,
    OrderReplacement,
    OrderStatus,
    OrderSubType,
    ReplaceStatus,
    Side,
    TimeInForce,
    utc_from_ns,
)
from models.orders import events as order_events
from models.orders.linked import legs_hold_id
from models.orders.view import FillView, OrderView
from models.positions import AppliedFills, FillSide
from models.positions import Side as PositionSide
from models.split_in_flight import (
    Holder,
    PendingSplit,
    holder_for,
    lieu_draft,
    lieu_fill_id,
    lieu_transaction,
    load_holders,
    settle_fractions,
    split_share_price,
    split_shares,
    write_holder,
)
from models.webhooks import events as webhook_events

log = structlog.get_logger("bourse.settlement")
FILL_NAMESPACE = uuid.UUID("0b5e1a57-9f57-4c4b-8a77-3c1e0f5d2a10")

# Called once per batch with the user sides of its new fills, in order, inside the settlement
# transaction (positions and tax lots: ``models.positions.apply_fills``).
FillsHook = Callable[[AsyncSession, Sequence[FillSide]], Awaitable[AppliedFills]]


class SettlementCursor(Base):
    __tablename__ = "settlement_cursors"

    stream: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_id: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


def stream_id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


# A settled entry: (events stream, entry id, the event decoded once by matching.wire).
Entry = tuple[str, str, WireEvent]


@dataclass(frozen=True, slots=True)
class Notice:
    """What a user is told after the commit (``orderUpdates``), published on their channel."""

    user_id: uuid.UUID
    event: str  # ACCEPTED | PARTIAL_FILL | FILL | CANCELLED | REJECTED | EXPIRED | TRIGGERED
    # | REPLACED
    order: OrderView
    fill: FillView | None = None
    cursor: int = 0  # its row in the order-event log (models.orders.events), once recorded
    trace: str | None = None  # the traceparent of the settlement span (bourse.tracing)

    def payload(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "order": self.order.to_wire(),
            "fill": None if self.fill is None else self.fill.to_wire(),
        }

    def to_json(self) -> str:
        """What is published: the payload and its cursor."""
        extra = {"trace": self.trace} if self.trace else {}
        return json.dumps({**self.payload(), "cursor": self.cursor, **extra}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Settled:
    """What a committed batch tells users: ``orderUpdates`` notices and inbox notifications
    (only the new ones: a replayed batch makes none)."""

    notices: list[Notice]
    notifications: list[NotificationView]


def _uuid(raw: object) -> uuid.UUID | None:
    """An order or user id of ours; None for the liquidity provider's (``lp-<n>``,
    ``liquidity-provider``) or anything else that is not a UUID."""
    if not isinstance(raw, str) or raw == LIQUIDITY_PROVIDER:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _AssetTerms:
    """What settlement needs of an asset; fixed when it is listed, so cached per process."""

    symbol: str
    currency: str
    scales: AssetScales
    increment: Decimal


@dataclass
class _Batch:
    ledger: LedgerBatch
    orders: dict[uuid.UUID, Order] = field(default_factory=dict)
    assets: dict[str, _AssetTerms] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    sides: list[FillSide] = field(default_factory=list)
    # Ledger accounts by (owner, asset): a user's CASH / SHARES, or (None, asset) the LP's.
    accounts: dict[tuple[uuid.UUID | None, str], uuid.UUID] = field(default_factory=dict)
    # Stock splits PostgreSQL applied whose SPLIT_APPLIED the settlement has not seen yet, by
    # asset: (action id, numerator, denominator), oldest first. A fill of such an asset is
    # from before the split in the engine's order (it was in flight when the split committed).
    pre_split: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)
    splits_seen: list[uuid.UUID] = field(default_factory=list)
    # An in-flight trade's fraction (models/split_in_flight.py): each split's price, the
    # holders' parts of it (locked), and what the batch writes for them.
    split_prices: dict[str, Decimal | None] = field(default_factory=dict)
    holders: dict[tuple[uuid.UUID, uuid.UUID], Holder] = field(default_factory=dict)
    split_actions: dict[uuid.UUID, CorporateAction] = field(default_factory=dict)
    lieu_rows: list[Any] = field(default_factory=list)
    lieu_drafts: list[Any] = field(default_factory=list)
    clearing: dict[str, uuid.UUID] = field(default_factory=dict)  # asset -> TRANSFER account
    bank: dict[str, uuid.UUID] = field(default_factory=dict)  # currency -> BANK account
    # The in-flight parties' cash accounts as locked (balance, held), before this batch, and
    # what last moved them (user, currency, split, fill): cash the batch takes beyond what is
    # available is a debit the customer owes (models/debits.py), never a failed batch.
    cash_state: dict[uuid.UUID, tuple[Decimal, Decimal]] = field(default_factory=dict)
    in_flight: dict[uuid.UUID, tuple[uuid.UUID, str, uuid.UUID, str]] = field(default_factory=dict)
    replacements: dict[uuid.UUID, OrderReplacement] = field(default_factory=dict)

    def order(self, raw_id: str | None) -> Order | None:
        """The locked order of this batch with that id (None: not ours, e.g. the LP's)."""
        ident = _uuid(raw_id)
        return None if ident is None else self.orders.get(ident)


class Settlement:
    """Applies a batch set-based: a fixed number of statements per batch (cursors, locks,
    fills, journal entries, postings, accounts, holds, orders, positions and lots), not per
    fill; the effects are computed in memory, in the events' order."""

    def __init__(self, ledger: Ledger, on_fills: FillsHook | None = None) -> None:
        self._ledger = ledger
        self._on_fills = on_fills
        self._assets: dict[str, _AssetTerms] = {}

    async def apply(self, s: AsyncSession, entries: Sequence[Entry]) -> Settled:
        """Apply ``(stream, entry_id, event)`` entries in order; call inside a transaction."""
        fresh = await self._advance_cursors(s, entries)
        if not fresh:
            return Settled([], [])
        batch = _Batch(LedgerBatch(self._ledger))
        batch.assets = await self._terms(s, {ev.asset_id for _, _, ev in fresh if ev.asset_id})

        # Lock order: ledger accounts (id order), then orders (id order), then holds. The
        # accounts follow from the events (each names its users and asset); an order whose
        # accounts the events did not name (never expected) has them locked after the fact.
        order_ids: set[uuid.UUID] = set()
        owners: set[tuple[uuid.UUID, str]] = set()
        lp_assets: set[str] = set()
        # A replace the shard refused for an order it does not hold names no user: the
        # request's row does (read without a lock: it never changes owner).
        unnamed_replaces = {
            i
            for _, _, ev in fresh
            if isinstance(ev, ReplaceRejectedEvent)
            and ev.user_id is None
            and (i := _uuid(ev.replace_id)) is not None
        }
        replace_owners: dict[uuid.UUID, uuid.UUID] = {}
        if unnamed_replaces:
            found = await s.execute(
                select(OrderReplacement.id, OrderReplacement.user_id).where(
                    OrderReplacement.id.in_(unnamed_replaces)
                )
            )
            replace_owners = {r.id: r.user_id for r in found}
        for _, _, ev in fresh:
            terms = batch.assets.get(ev.asset_id or "")
            pairs: tuple[tuple[str | None, str | None], ...]
            if isinstance(ev, FillEvent):
                pairs = (
                    (ev.maker_order_id, ev.maker_user_id),
                    (ev.taker_order_id, ev.taker_user_id),
                )
            elif isinstance(ev, ReplaceRejectedEvent) and ev.user_id is None:
                owner = replace_owners.get(_uuid(ev.replace_id) or uuid.UUID(int=0))
                pairs = ((ev.order_id, None if owner is None else str(owner)),)
            else:
                pairs = ((ev.order_id, getattr(ev, "user_id", None)),)
            for raw_order, raw_user in pairs:
                order_id, user_id = _uuid(raw_order), _uuid(raw_user)
                if order_id is not None:
                    order_ids.add(order_id)
                if terms is None:
                    continue
                if user_id is not None:
                    owners.add((user_id, terms.symbol))
                elif isinstance(ev, FillEvent):
                    lp_assets.add(terms.symbol)
        accounts = {a for pair in owners for a in await self._user_accounts(s, *pair, batch)}
        for symbol in lp_assets:
            terms = batch.assets[symbol]
            for asset in (terms.currency, terms.symbol):
                batch.accounts[(None, asset)] = await self._lp_account(s, asset)
                accounts.add(batch.accounts[(None, asset)])
        # A split's asset row first, as the split itself takes it (models/corporate_actions.py:
        # the asset, then ledger accounts): this batch clears its `splitting` below, and taking
        # the row only then, behind the accounts, deadlocked with the asset's next split.
        splitting = sorted(
            {ev.asset_id for _, _, ev in fresh if isinstance(ev, SplitAppliedEvent) and ev.asset_id}
        )
        if splitting:
            await s.execute(
                select(Asset.symbol)
                .where(Asset.symbol.in_(splitting))
                .order_by(Asset.symbol)
                .with_for_update()
            )
        await self._ledger.lock(s, accounts)
        if order_ids:
            locked = (
                await s.scalars(
                    select(Order)
                    .where(Order.id.in_(order_ids))
                    .order_by(Order.id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            ).all()
            batch.orders = {o.id: o for o in locked}
        unnamed: set[uuid.UUID] = set()
        for o in batch.orders.values():
            if (o.user_id, o.asset_id) not in owners and o.asset_id in batch.assets:
                unnamed.update(await self._user_accounts(s, o.user_id, o.asset_id, batch))
        if unnamed - accounts:
            log.error("settlement: events did not name an order's owner", accounts=len(unnamed))
            await self._ledger.lock(s, unnamed - accounts)
        holds = {o.hold_id for o in batch.orders.values() if o.hold_id is not None}
        holds |= {legs_hold_id(o.id) for o in batch.orders.values() if _entry_of_exits(o)}
        await batch.ledger.load_holds(s, holds)
        replace_ids = {
            i
            for _, _, ev in fresh
            if isinstance(ev, ReplacedEvent | ReplaceRejectedEvent)
            and (i := _uuid(ev.replace_id)) is not None
        }
        if replace_ids:
            rows = await s.scalars(
                select(OrderReplacement)
                .where(OrderReplacement.id.in_(replace_ids))
                .order_by(OrderReplacement.id)
                .with_for_update()
            )
            batch.replacements = {r.id: r for r in rows}

        split_assets = {
            ev.asset_id for _, _, ev in fresh if isinstance(ev, FillEvent | SplitAppliedEvent)
        }
        if split_assets:
            for row in await s.execute(
                select(
                    CorporateAction.id,
                    CorporateAction.asset_id,
                    CorporateAction.numerator,
                    CorporateAction.denominator,
                    CorporateAction.split_price,
                )
                .where(
                    CorporateAction.kind == CorporateActionKind.STOCK_SPLIT,
                    CorporateAction.status == CorporateActionStatus.APPLIED,
                    CorporateAction.engine_applied_at.is_(None),
                    CorporateAction.asset_id.in_(split_assets),
                )
                .order_by(CorporateAction.applied_at)
            ):
                batch.pre_split.setdefault(row.asset_id, []).append(
                    (str(row.id), int(row.numerator or 1), int(row.denominator or 1))
                )
                batch.split_prices[str(row.id)] = row.split_price
        await self._load_split_holders(s, batch, fresh)
        new_fills = await self._insert_fills(s, batch, fresh)
        for _, _, ev in fresh:
            if isinstance(ev, FillEvent):
                if ev.fill_id in new_fills:
                    self._fill(batch, ev)
            elif isinstance(ev, CancelledEvent | ExpiredEvent | RejectedEvent):
                self._end(batch, ev)
            elif isinstance(ev, ReplacedEvent | ReplaceRejectedEvent):
                self._replaced(batch, ev)
            elif isinstance(ev, ResizedEvent):
                order = batch.order(ev.order_id)
                terms = batch.assets.get(ev.asset_id)
                if order is not None and terms is not None and order.status not in FINAL_STATUSES:
                    order.quantity = from_fixed(ev.quantity, terms.scales.qty_scale)
                    order.updated_at = utcnow()
                    kind = "ACTIVATED" if ev.reason == "ACTIVATED" else "REDUCED"
                    batch.notices.append(Notice(order.user_id, kind, OrderView.of(order)))
            elif isinstance(ev, SplitAdjustedEvent):
                self._split_adjusted(batch, ev)
            elif isinstance(ev, SplitAppliedEvent):
                pending = batch.pre_split.get(ev.asset_id, [])
                batch.pre_split[ev.asset_id] = [p for p in pending if p[0] != ev.split_id]
                if (seen := _uuid(ev.split_id)) is not None:
                    batch.splits_seen.append(seen)
            elif isinstance(ev, StopMovedEvent):
                order = batch.order(ev.order_id)
                terms = batch.assets.get(ev.asset_id)
                if order is not None and terms is not None and order.status not in FINAL_STATUSES:
                    order.stop_price = from_fixed(ev.stop_price, terms.scales.price_scale)
                    order.updated_at = utcnow()
            elif isinstance(ev, AcceptedEvent | TriggeredEvent):
                order = batch.order(ev.order_id)
                if order is None:
                    continue
                terms = batch.assets.get(ev.asset_id)
                if (
                    isinstance(ev, AcceptedEvent)
                    and order.sub_type is OrderSubType.TRAILING_STOP
                    and ev.stop_price
                    and terms is not None
                ):  # the engine's first stop (it trails the venue's own mark)
                    order.stop_price = from_fixed(ev.stop_price, terms.scales.price_scale)
                if isinstance(ev, TriggeredEvent):
                    order.triggered_at = utc_from_ns(ev.ts or 0)
                    order.updated_at = utcnow()
                kind = "TRIGGERED" if isinstance(ev, TriggeredEvent) else "ACCEPTED"
                batch.notices.append(Notice(order.user_id, kind, OrderView.of(order)))
        if shortfalls := self._shortfalls(batch):
            batch.lieu_drafts += await record_shortfalls(s, self._ledger, batch.ledger, shortfalls)
        await batch.ledger.write(s)
        for holder in batch.holders.values():
            action = batch.split_actions.get(holder.action_id)
            if action is not None and (holder.row is not None or holder.kept or holder.cash):
                write_holder(s, holder, action)
        s.add_all(batch.lieu_rows)
        if batch.splits_seen:
            applied = (
                await s.scalars(
                    update(CorporateAction)
                    .where(
                        CorporateAction.id.in_(batch.splits_seen),
                        CorporateAction.engine_applied_at.is_(None),
                    )
                    .values(engine_applied_at=utcnow())
                    .returning(CorporateAction.asset_id)
                    .execution_options(synchronize_session=False)
                )
            ).all()
            still = {a for a, pending in batch.pre_split.items() if pending}
            if reopened := set(applied) - still:  # the engine has the split: trading resumes
                await s.execute(
                    update(Asset)
                    .where(Asset.symbol.in_(reopened))
                    .values(splitting=False)
                    .execution_options(synchronize_session=False)
                )
        await s.flush()  # the orders
        if self._on_fills is not None and batch.sides:
            result = await self._on_fills(s, batch.sides)
            for side in result.refused:
                # Positions are derived data: the money has settled; say so loudly.
                log.error(
                    "position out of step with the ledger",
                    user_id=str(side.user_id),
                    asset_id=side.asset_id,
                    fill_id=side.fill_id,
                    error=f"selling {side.quantity} beyond the position",
                )
        notices = await self._record(s, batch.notices)
        views = await self._notify(s, notices)
        if batch.lieu_drafts:
            views += await record_notifications(s, batch.lieu_drafts)
        return Settled(notices, views)

    async def _load_split_holders(
        self, s: AsyncSession, batch: _Batch, fresh: Sequence[Entry]
    ) -> None:
        """The parts of every pending split of each asset (a trade in flight settles its
        fraction against each split it preceded, oldest first) of the users this batch's fills
        move, locked; and those users' cash accounts as they stand (already locked)."""
        pending = {asset: p for asset, p in batch.pre_split.items() if p}
        users = {
            (u, ev.asset_id)
            for _, _, ev in fresh
            if isinstance(ev, FillEvent) and ev.asset_id in pending
            for u in (_uuid(ev.maker_user_id), _uuid(ev.taker_user_id))
            if u is not None
        }
        if not users:
            return
        actions = {
            uuid.UUID(split_id): batch.assets[k].currency
            for k, p in pending.items()
            if k in batch.assets
            for split_id, _, _ in p
        }
        batch.holders, batch.split_actions = await load_holders(s, actions, {u for u, _ in users})
        for sym in pending.keys() & batch.assets.keys():
            ccy = batch.assets[sym].currency
            batch.clearing[sym] = await self._ledger.account_id(s, None, AccountKind.TRANSFER, sym)
            batch.bank[ccy] = await self._ledger.account_id(s, None, AccountKind.BANK, ccy)
        cash = [
            batch.accounts[(u, batch.assets[a].currency)]
            for u, a in users
            if a in batch.assets and (u, batch.assets[a].currency) in batch.accounts
        ]
        rows = await s.execute(
            select(LedgerAccount.id, LedgerAccount.balance, LedgerAccount.held).where(
                LedgerAccount.id.in_(cash)
            )
        )
        batch.cash_state = {r.id: (r.balance, r.held) for r in rows}

    @staticmethod
    async def _notify(s: AsyncSession, notices: list[Notice]) -> list[NotificationView]:
        """The inbox rows of the batch's notices: one INSERT, deduplicated by event."""
        drafts = []
        for n in notices:
            fill = n.fill
            draft = order_draft(
                n.user_id,
                n.event,
                n.order,
                fill_id=None if fill is None else fill.id,
                fill_quantity=None if fill is None else fill.quantity,
                fill_price=None if fill is None else fill.price,
            )
            if draft is not None:
                drafts.append(draft)
        return await record_notifications(s, drafts)

    @staticmethod
    async def _record(s: AsyncSession, notices: list[Notice]) -> list[Notice]:
        """Write the notices to the order-event log (one INSERT); they come back with their
        cursors, to be published after the commit."""
        if not notices:
            return notices
        compact = (",", ":")
        rows = [
            (n.user_id, n.order.id, n.event, json.dumps(n.payload(), separators=compact))
            for n in notices
        ]
        cursors = await order_events.record(s, rows)
        # Partner webhooks: the same notices, in the same transaction (models/webhooks).
        await webhook_events.emit(
            s,
            [
                webhook_events.Draft(
                    n.user_id,
                    webhook_events.ORDER_EVENTS[n.event],
                    {k: v for k, v in n.payload().items() if k != "event"},
                )
                for n in notices
                if n.event in webhook_events.ORDER_EVENTS
            ],
            utcnow(),
        )
        return [replace(n, cursor=c) for n, c in zip(notices, cursors, strict=True)]

    async def _terms(self, s: AsyncSession, symbols: set[str]) -> dict[str, _AssetTerms]:
        missing = symbols - self._assets.keys()
        if missing:
            for a in (await s.scalars(select(Asset).where(Asset.symbol.in_(missing)))).all():
                self._assets[a.symbol] = _AssetTerms(
                    a.symbol, a.currency, scales(a), a.quantity_increment
                )
        return {sym: self._assets[sym] for sym in symbols if sym in self._assets}

    async def _user_accounts(
        self, s: AsyncSession, user_id: uuid.UUID, symbol: str, batch: _Batch
    ) -> tuple[uuid.UUID, uuid.UUID]:
        terms = batch.assets[symbol]
        cash = await self._ledger.account_id(s, user_id, AccountKind.CASH, terms.currency)
        shares = await self._ledger.account_id(s, user_id, AccountKind.SHARES, symbol)
        batch.accounts[(user_id, terms.currency)] = cash
        batch.accounts[(user_id, symbol)] = shares
        return cash, shares

    async def _insert_fills(
        self, s: AsyncSession, batch: _Batch, fresh: Sequence[Entry]
    ) -> set[str]:
        """One INSERT for the batch's fills; returns the ids new to the table (a fill seen
        again changes nothing, whatever the cursor says)."""
        rows: dict[str, tuple[object, ...]] = {}
        for _, _, ev in fresh:
            if not isinstance(ev, FillEvent) or ev.fill_id in rows:
                continue
            terms = batch.assets.get(ev.asset_id)
            if terms is None:
                continue
            price = from_fixed(ev.price, terms.scales.price_scale)
            qty = from_fixed(ev.quantity, terms.scales.qty_scale)
            rows[ev.fill_id] = (
                ev.fill_id,
                terms.symbol,
                price,
                qty,
                fill_cash(qty, price, terms.currency),
                terms.currency,
                _uuid(ev.maker_order_id),
                _uuid(ev.taker_order_id),
                _uuid(ev.maker_user_id),
                _uuid(ev.taker_user_id),
                ev.taker_side,
                utc_from_ns(ev.ts or 0),
            )
        result = await bulk.insert_rows(
            s,
            "fills",
            _FILL_COLUMNS,
            list(rows.values()),
            suffix="ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        return set() if result is None else {r.id for r in result}

    async def _advance_cursors(self, s: AsyncSession, entries: Sequence[Entry]) -> list[Entry]:
        streams = sorted({stream for stream, _, _ in entries})
        if not streams:
            return []
        rows = await s.execute(
            select(SettlementCursor)
            .where(SettlementCursor.stream.in_(streams))
            .order_by(SettlementCursor.stream)
            .with_for_update()
        )
        cursors = {c.stream: stream_id_key(c.last_id) for (c,) in rows}
        fresh: list[Entry] = []
        last: dict[str, str] = {}
        for stream, entry_id, ev in entries:
            if stream in cursors and stream_id_key(entry_id) <= cursors[stream]:
                continue
            fresh.append((stream, entry_id, ev))
            last[stream] = entry_id
        for stream, entry_id in last.items():
            stmt = insert(SettlementCursor).values(
                stream=stream, last_id=entry_id, updated_at=utcnow()
            )
            await s.execute(
                stmt.on_conflict_do_update(
                    index_elements=[SettlementCursor.stream],
                    set_={"last_id": entry_id, "updated_at": utcnow()},
                )
            )
        return fresh

    async def _lp_account(self, s: AsyncSession, asset: str) -> uuid.UUID:
        return await self._ledger.account_id(s, None, AccountKind.LIQUIDITY, asset)

    def _fill(self, batch: _Batch, ev: FillEvent) -> None:
        terms = batch.assets[ev.asset_id]
        sc = terms.scales
        price = from_fixed(ev.price, sc.price_scale)
        qty = from_fixed(ev.quantity, sc.qty_scale)
        value = fill_cash(qty, price, terms.currency)
        traded_qty = qty
        pending = batch.pre_split.get(ev.asset_id, [])
        for _, n, d in pending:
            # A trade from before a split PostgreSQL has already applied (the holdings it
            # moves were split without it): its shares x n/d and price / (n/d), the cash as
            # traded; its fraction finer than the increment as cash in lieu (below).
            qty = split_shares(qty, n, d)
            price = split_share_price(price, n, d)
        at = utc_from_ns(ev.ts or 0)
        taker_side = Side(ev.taker_side)
        maker_user, taker_user = _uuid(ev.maker_user_id), _uuid(ev.taker_user_id)
        sides = (
            (batch.order(ev.taker_order_id), taker_user, taker_side, bool(ev.taker_done)),
            (
                batch.order(ev.maker_order_id),
                maker_user,
                Side.SELL if taker_side is Side.BUY else Side.BUY,
                bool(ev.maker_done),
            ),
        )
        legs: list[Leg] = []
        for order, user, side, _done in sides:
            if order is None or user is None:  # the liquidity provider (or a foreign order)
                cash_acct = batch.accounts[(None, terms.currency)]
                share_acct = batch.accounts[(None, terms.symbol)]
            else:
                cash_acct = batch.accounts[(user, terms.currency)]
                share_acct = batch.accounts[(user, terms.symbol)]
                if order.hold_id is not None:
                    used = value if side is Side.BUY else qty
                    if used > 0:
                        batch.ledger.consume(order.hold_id, used)
                if side is Side.BUY and _entry_of_exits(order):
                    # The exits will sell what this fill buys: reserve it for them now, with
                    # the shares' arrival (one hold for both legs).
                    batch.ledger.grow(
                        legs_hold_id(order.id),
                        share_acct,
                        qty,
                        reason="order",
                        user_id=order.user_id,
                        reference_id=order.id,
                    )
            sign = 1 if side is Side.BUY else -1
            if value:
                legs.append(Leg(cash_acct, terms.currency, -sign * value))
            legs.append(Leg(share_acct, terms.symbol, sign * qty))
        batch.ledger.post(
            "trade", legs, user_id=taker_user, reference_id=uuid.uuid5(FILL_NAMESPACE, ev.fill_id)
        )
        # Each party's fraction against every split it preceded (models/split_in_flight.py),
        # once the holds of the orders this fill ends are given back (what its cash covers).
        moves: dict[int, list[tuple[FillSide, bool]]] = {}
        if pending:
            for order, user, _side, done in sides:
                if order is not None and user is not None and done and order.hold_id is not None:
                    batch.ledger.release(order.hold_id)
            for i, (order, user, side, _done) in enumerate(sides):
                if order is not None and user is not None:
                    moves[i] = self._in_flight_fraction(
                        batch, ev, terms, pending, user, side, qty, traded_qty, at
                    )

        fill = FillView(id=str(ev.fill_id), quantity=plain(qty), price=plain(price), timestamp=at)
        for i, (order, user, side, done) in enumerate(sides):
            if order is None or user is None:
                continue
            lieu_sides = moves.get(i, [])
            # A fraction taken back: before the sale; a fraction sold: after the buy.
            batch.sides.extend(lieu for lieu, before in lieu_sides if before)
            order.filled_quantity += qty
            order.filled_value += from_fixed(ev.price, sc.price_scale) * from_fixed(
                ev.quantity, sc.qty_scale
            )  # the value as traded (equal to price x qty unless the trade predates a split)
            order.updated_at = utcnow()
            if done:
                order.status = OrderStatus.EXECUTED
                order.executed_at = at
                if order.hold_id is not None:
                    batch.ledger.release(order.hold_id)
            else:
                order.status = OrderStatus.PARTIALLY_FILLED
            if pending and order.quantity is not None and order.filled_quantity > order.quantity:
                # The split floored the order's quantity; the trade it made before is whole.
                order.quantity = order.filled_quantity
            batch.sides.append(
                FillSide(
                    user,
                    terms.symbol,
                    terms.currency,
                    PositionSide(side),
                    qty,
                    price,
                    value,
                    ev.fill_id,
                    at,
                )
            )
            batch.sides.extend(lieu for lieu, before in lieu_sides if not before)
            batch.notices.append(
                Notice(
                    order.user_id,
                    "FILL" if done else "PARTIAL_FILL",
                    OrderView.of(order),
                    fill,
                )
            )

    def _in_flight_fraction(
        self,
        batch: _Batch,
        ev: FillEvent,
        terms: _AssetTerms,
        pending: list[tuple[str, int, int]],
        user: uuid.UUID,
        side: Side,
        qty: Decimal,
        traded_qty: Decimal,
        at: datetime,
    ) -> list[tuple[FillSide, bool]]:
        """Settle one party's fraction of a trade in flight at one or more splits as cash in
        lieu, as if it had settled before the first (``models/split_in_flight.py``): per split
        whose part moves, one CASH_IN_LIEU journal entry, its funds row and notification; the
        positions' sides of them (and whether each goes before the trade's own side: a
        fraction taken back, bought before the sale)."""
        known = [p for p in pending if uuid.UUID(p[0]) in batch.split_actions]
        if len(known) != len(pending):
            return []
        shares, cash = batch.accounts[(user, terms.symbol)], batch.accounts[(user, terms.currency)]
        batch.in_flight[cash] = (user, terms.currency, uuid.UUID(pending[0][0]), ev.fill_id)
        holders = [
            holder_for(batch.holders, uuid.UUID(split_id), user, terms.symbol, terms.currency)
            for split_id, _, _ in pending
        ]
        splits = [
            # each split's price (before migration 0031 none: the trade's, in its shares)
            PendingSplit(
                n, d, batch.split_prices.get(split_id) or self._traded_price(ev, terms, pending, i)
            )
            for i, (split_id, n, d) in enumerate(pending)
        ]
        sign = 1 if side is Side.BUY else -1
        steps = settle_fractions(holders, splits, sign * traded_qty, sign * qty, terms.increment)
        if steps is None:
            log.error("split in flight: holding below zero", user_id=str(user))
            return []
        clearing, bank = batch.clearing[terms.symbol], batch.bank[terms.currency]
        out: list[tuple[FillSide, bool]] = []
        for step in steps:
            move, holder = step.move, step.holder
            if not (move.shares or move.cash):
                continue
            action = batch.split_actions[holder.action_id]
            legs: list[Leg] = []
            if move.shares:
                legs += [
                    Leg(shares, terms.symbol, move.shares),
                    Leg(clearing, terms.symbol, -move.shares),
                ]
            if move.cash:
                legs += [
                    Leg(cash, terms.currency, move.cash),
                    Leg(bank, terms.currency, -move.cash),
                ]
            txn_id = uuid.uuid4()
            entry_id = batch.ledger.post("CASH_IN_LIEU", legs, user_id=user, reference_id=txn_id)
            action.total_cash += move.cash
            if move.cash:
                batch.lieu_rows.append(
                    lieu_transaction(
                        holder, terms.symbol, move.cash, ev.fill_id, entry_id, txn_id, utcnow()
                    )
                )
            batch.lieu_drafts.append(lieu_draft(holder, terms.symbol, move, ev.fill_id))
            if not move.shares:
                continue
            taken_back = move.shares > 0
            out.append(
                (
                    FillSide(
                        user,
                        terms.symbol,
                        terms.currency,
                        PositionSide.BUY if taken_back else PositionSide.SELL,
                        abs(move.shares),
                        step.price,
                        abs(move.cash),
                        lieu_fill_id(holder.action_id, user, ev.fill_id),
                        at,
                    ),
                    taken_back,
                )
            )
        return out

    @staticmethod
    def _traded_price(
        ev: FillEvent, terms: _AssetTerms, pending: list[tuple[str, int, int]], i: int
    ) -> Decimal:
        """The fill's price in the shares just after the i-th pending split (a split recorded
        before migration 0031 kept no price: cash in lieu at the trade's)."""
        price = from_fixed(ev.price, terms.scales.price_scale)
        for _, n, d in pending[: i + 1]:
            price = split_share_price(price, n, d)
        return price

    @staticmethod
    def _shortfalls(batch: _Batch) -> list[Shortfall]:
        """The in-flight parties' cash the batch takes beyond what they have available (the
        cash in lieu a trade in flight pays back; the trade itself beyond the hold the split
        floored): each is advanced by the firm and owed by the customer (models/debits.py)."""
        out = []
        for account, (user, currency, action_id, fill_id) in batch.in_flight.items():
            balance, held = batch.cash_state.get(account, (ZERO, ZERO))
            d_balance, d_held = batch.ledger.pending(account)
            available = balance + d_balance - max(held + d_held, ZERO)
            if available < 0:
                out.append(Shortfall(user, currency, account, -available, action_id, fill_id))
        return out

    def _split_adjusted(self, batch: _Batch, ev: SplitAdjustedEvent) -> None:
        """A stock split's terms as the engine applied them (``core/split.py``): the split's
        own transaction already wrote the same terms (``models/corporate_actions.py``), so this
        changes nothing unless a fill was in flight; the engine's terms win. The user's price
        fields that the order does not have (a stop buy's cap is the broker's) stay absent."""
        order = batch.order(ev.order_id)
        terms = batch.assets.get(ev.asset_id)
        if order is None or terms is None or order.status in FINAL_STATUSES:
            return
        qs, ps = terms.scales.qty_scale, terms.scales.price_scale
        quantity, filled = from_fixed(ev.quantity, qs), from_fixed(ev.filled, qs)
        price = None if ev.price is None else from_fixed(ev.price, ps)
        stop = None if ev.stop_price is None else from_fixed(ev.stop_price, ps)
        if (order.quantity, order.filled_quantity) != (quantity, filled):
            log.warning("split: engine and record differ", order_id=str(order.id))
        order.quantity, order.filled_quantity = quantity, filled
        if (
            order.price is not None
            and price is not None
            and order.sub_type is not (OrderSubType.STOP_LOSS)
        ):
            order.price = price
        if order.stop_price is not None and stop is not None:
            order.stop_price = stop
        if order.trail_amount is not None and ev.trail_amount:
            order.trail_amount = from_fixed(ev.trail_amount, ps)
        order.updated_at = utcnow()
        batch.notices.append(Notice(order.user_id, "SPLIT_ADJUSTED", OrderView.of(order)))

    def _replaced(self, batch: _Batch, ev: ReplacedEvent | ReplaceRejectedEvent) -> None:
        order = batch.order(ev.order_id)
        terms = batch.assets.get(ev.asset_id or "")
        ident = _uuid(ev.replace_id)
        row = None if ident is None else batch.replacements.get(ident)
        now = utcnow()
        if row is not None and row.status == ReplaceStatus.PENDING:
            row.settled_at = now
            if isinstance(ev, ReplacedEvent):
                row.status = ReplaceStatus.REPLACED
                row.kept_priority = bool(ev.kept_priority)
            else:
                row.status = ReplaceStatus.REJECTED
                row.reason = str(ev.reason)[:32]
        if order is None or terms is None or order.status in FINAL_STATUSES:
            return  # an order that has ended released its hold then
        if not ev.remaining:
            # Open here but not live in the shard (its NEW_ORDER not there yet: a crash before
            # the send, which the relay repairs): give back exactly what the request added.
            if row is not None and row.hold_added > 0 and order.hold_id is not None:
                batch.ledger.give_back(order.hold_id, row.hold_added)
            return
        sc = terms.scales
        if order.hold_id is not None:
            remaining = from_fixed(ev.remaining, sc.qty_scale)
            if order.side is Side.SELL:
                need = remaining
            else:
                price = from_fixed(ev.price or 0, sc.price_scale)
                need = round_cash(remaining * price, terms.currency, ROUND_CEILING)
            if need > 0:
                batch.ledger.shrink(order.hold_id, need)
        if isinstance(ev, ReplaceRejectedEvent):
            return
        order.quantity = from_fixed(ev.quantity, sc.qty_scale)
        order.time_in_force = TimeInForce(ev.tif)
        order.stop_price = from_fixed(ev.stop_price, sc.price_scale) if ev.stop_price else None
        if row is not None:
            order.price = row.price  # the user's (a buy stop's engine price is its cap)
            order.trail_percent = row.trail_percent
            order.trail_amount = row.trail_amount
        elif order.price is not None and ev.price:
            order.price = from_fixed(ev.price, sc.price_scale)
        order.updated_at = now
        batch.notices.append(Notice(order.user_id, "REPLACED", OrderView.of(order)))

    def _end(self, batch: _Batch, ev: OrderEndEvent) -> None:
        order = batch.order(ev.order_id)
        if order is None or order.status in FINAL_STATUSES:
            return
        if isinstance(ev, CancelledEvent):
            kind = order.status = OrderStatus.CANCELLED
            order.cancel_reason = str(ev.reason or "USER")
        elif isinstance(ev, ExpiredEvent):
            kind = order.status = OrderStatus.EXPIRED
        else:
            kind = order.status = OrderStatus.REJECTED
            order.reject_reason = str(ev.reason or "REJECTED")
        order.updated_at = utcnow()
        if order.hold_id is not None:
            batch.ledger.release(order.hold_id)
        batch.notices.append(Notice(order.user_id, str(kind), OrderView.of(order)))


def _entry_of_exits(order: Order) -> bool:
    """A bracket's or OTO's entry (its legs sell what it buys)."""
    return order.parent_id is None and order.order_class in (OrderClass.BRACKET, OrderClass.OTO)


_FILL_COLUMNS: Final = (
    ("id", "text"),
    ("asset_id", "text"),
    ("price", "numeric"),
    ("quantity", "numeric"),
    ("value", "numeric"),
    ("currency", "text"),
    ("maker_order_id", "uuid"),
    ("taker_order_id", "uuid"),
    ("maker_user_id", "uuid"),
    ("taker_user_id", "uuid"),
    ("taker_side", "order_side"),
    ("executed_at", "timestamptz"),
)
