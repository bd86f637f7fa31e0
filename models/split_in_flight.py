"""A trade in flight at a stock split: its fraction settled as cash in lieu.

A fill the engine made before a ``SPLIT`` but settled after the split committed (in flight) is
settled in post-split shares (quantity x n/d, price / (n/d), the cash as traded:
``models/settlement.py``). The split itself already paid every holder cash in lieu of the
fraction of their holding finer than the increment, from the holdings it saw, which did not
include the trade. The rule here makes each party end **exactly as if the trade had settled
before the split**: whole increments, plus cash in lieu of the fraction the split would then
have seen, at the split's own price (``corporate_actions.split_price``).

Each holder's part of the split is its ``corporate_action_entries`` row: ``quantity_after``
(K, the increments kept) and ``in_lieu_quantity`` (f, the fraction paid in lieu of, post-split
shares), ``cash`` (what was paid for it). As if before the split, the holding would have been
``Y = K + f + q`` (q: the trade's signed post-split quantity) and the split would have kept
``K' = floor(Y)`` (to the increment) and paid ``fill_cash(Y - K', price)``. The holder now has
``K + q``, so the settlement moves, in one ``CASH_IN_LIEU`` journal entry:

- ``K' - (K + q)`` shares between the holder and the asset's TRANSFER clearing account (where
  the split's fractions went), either way, always less than one increment, and
- ``fill_cash(Y - K', price) - cash`` between the BANK and the holder's cash (either way).

So the buyer's new fraction is sold as cash in lieu (shares to the clearing account, cash from
the bank), and the seller, who sold shares the split had already floored (its fraction of
them was paid in lieu), delivers only what it still holds: the difference is taken back from
the clearing account and the cash in lieu of it paid back to the bank, at the same price. The
two moves of one trade cancel across the parties when both were floored alike (a 3-for-2 sale
of 3 shares: the seller takes 0.5 back and pays 10.00, the buyer sells 0.5 and is paid 10.00);
the ledger stays balanced per entry in every case, and nobody keeps or is paid a sub-increment
fraction. Positions follow the ledger: a fraction sold is a SELL (FIFO lots, a realized gain)
after the trade, a fraction taken back a BUY (a lot at the split's price) before it, both under
a ``split:`` fill id (statements list the funds row instead of a trade). The entry row is
updated (inserted for a party that held nothing at the split) to what the split would have
recorded, so a second trade in flight starts from it; its ``quantity_before`` moves by the
trade's pre-split quantity. A replayed batch pays nothing twice: all of this happens only for a
fill new to the ``fills`` table, in its transaction, and the funds row and the positions' fill
are keyed by the fill.

**Several splits in flight** (two splits of one asset committed before the trade settles):
the rule runs per split, oldest first (``settle_fractions``), as if the trade had settled
before the first. At the first split the holding changes by the trade's quantity; at each
later one by what that changed in the whole increments the split before kept (K' - K, carried
by the later ratio), which is what the later split would have seen. Each split's entry row is
updated as it would have recorded, each split's fraction paid or taken back at its own price,
and each move carried into today's shares by the later ratios (its price per today's share
divided by them); the shares moved add up to K' - (K + q) of the latest split, so the holder
ends with exactly what it would have kept. Cash the party does not have is a debit it owes,
never a failed batch (``models/debits.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.corporate_actions import (
    SPLIT_FILL_PREFIX,
    CorporateAction,
    CorporateActionEntry,
    CorporateActionKind,
    in_lieu_terms,
)
from models.funds import FundTransaction, TransactionStatus, TransactionType
from models.ledger import ZERO
from models.notifications.actions import Draft
from models.notifications.messages import split_in_flight_draft

LIEU_NAMESPACE = uuid.UUID("6f1f4f1e-5d0b-4c64-9a51-2b8f0d1c7a33")


@dataclass(slots=True)
class Holder:
    """One holder's part of a split, as in-flight trades move it (its entry row)."""

    action_id: uuid.UUID
    user_id: uuid.UUID
    asset_id: str
    currency: str
    before: Decimal  # pre-split shares the split counts (as if the trades had settled before)
    kept: Decimal  # K: whole increments after the split
    fraction: Decimal  # f: post-split shares paid in lieu of
    cash: Decimal  # what was paid for f
    row: CorporateActionEntry | None  # None: held nothing at the split (inserted if moved)


@dataclass(frozen=True, slots=True)
class Move:
    """What one in-flight trade settles for one holder, beside the trade itself."""

    shares: Decimal  # to the holder from the clearing account (> 0), or back to it (< 0)
    cash: Decimal  # to the holder from the bank (> 0), or back to it (< 0)


SPLIT_EXACT = Decimal("1e-18")  # the ledger's scale


def split_shares(quantity: Decimal, numerator: int, denominator: int) -> Decimal:
    """A signed quantity in shares after an n-for-d split, to the ledger's 18 decimals (its
    size rounded down: a split never makes more shares than it gives)."""
    size = (abs(quantity) * numerator / denominator).quantize(SPLIT_EXACT, rounding=ROUND_DOWN)
    return -size if quantity < 0 else size


def split_share_price(price: Decimal, numerator: int, denominator: int) -> Decimal:
    """A per-share price after an n-for-d split, to the ledger's 18 decimals (rounded down)."""
    return (price * denominator / numerator).quantize(SPLIT_EXACT, rounding=ROUND_DOWN)


@dataclass(frozen=True, slots=True)
class PendingSplit:
    """A split a trade in flight preceded: its ratio and its cash in lieu price."""

    numerator: int
    denominator: int
    price: Decimal  # per share just after this split


@dataclass(frozen=True, slots=True)
class Step:
    """One split's part of a trade in flight: the move for its holder, in today's shares (the
    shares after every split the trade preceded), and its price per today's share."""

    holder: Holder
    move: Move
    price: Decimal


def settle_fractions(
    holders: Sequence[Holder],
    splits: Sequence[PendingSplit],
    pre_quantity: Decimal,
    quantity: Decimal,
    increment: Decimal,
) -> list[Step] | None:
    """Apply a trade's signed ``pre_quantity`` (as traded, before the oldest split) to one
    party's parts of the splits it preceded (``holders``, ``splits``: oldest first), as if it
    had settled before the first: at each split the holding would have been Y = K + f + the
    change it brought in that split's shares (the trade's for the first; for a later one, what
    the trade changed in the whole increments kept by the split before), kept floor(Y) and paid
    cash in lieu of the rest at that split's price. ``quantity`` is the trade as settled, in
    today's shares; the moves' shares add up to K' - (K + quantity) of the latest split, so the
    holder ends with exactly what it would have kept. The holders are updated; None (nothing
    changed) when a holding would go below zero, which this rule cannot make whole."""
    delta = pre_quantity  # the change to the holding just before the split, in its shares
    plans: list[tuple[Holder, Decimal, Decimal, Decimal, Decimal, Decimal]] = []
    for holder, split in zip(holders, splits, strict=True):
        q = split_shares(delta, split.numerator, split.denominator)
        whole = holder.kept + holder.fraction + q
        if whole < 0:
            return None
        kept, fraction, cash = in_lieu_terms(whole, increment, split.price, holder.currency)
        plans.append((holder, delta, kept, fraction, cash, kept - (holder.kept + q)))
        delta = kept - holder.kept
    moved: list[Decimal] = []
    prices: list[Decimal] = []
    for i, plan in enumerate(plans):
        shares, price = plan[5], splits[i].price
        for later in splits[i + 1 :]:  # carried into today's shares by the later splits
            shares = split_shares(shares, later.numerator, later.denominator)
            price = split_share_price(price, later.numerator, later.denominator)
        moved.append(shares)
        prices.append(price)
    last_holder, _, last_kept = plans[-1][0], plans[-1][1], plans[-1][2]
    moved[-1] += last_kept - (last_holder.kept + quantity) - sum(moved, ZERO)  # 10^-18 rests
    steps = []
    for (holder, change, kept, fraction, cash, _), shares, price in zip(
        plans, moved, prices, strict=True
    ):
        move = Move(shares, cash - holder.cash)
        holder.before += change
        holder.kept, holder.fraction, holder.cash = kept, fraction, cash
        steps.append(Step(holder, move, price))
    return steps


async def load_holders(
    s: AsyncSession, actions: dict[uuid.UUID, str], users: set[uuid.UUID]
) -> tuple[dict[tuple[uuid.UUID, uuid.UUID], Holder], dict[uuid.UUID, CorporateAction]]:
    """The entries of those splits (action id -> asset's currency) for those users, locked;
    and the actions themselves, locked (their totals move)."""
    if not actions or not users:
        return {}, {}
    rows = (
        await s.scalars(
            select(CorporateAction)
            .where(CorporateAction.id.in_(list(actions)))
            .order_by(CorporateAction.id)
            .with_for_update()
        )
    ).all()
    found = (
        await s.scalars(
            select(CorporateActionEntry)
            .where(
                CorporateActionEntry.action_id.in_(list(actions)),
                CorporateActionEntry.user_id.in_(list(users)),
            )
            .order_by(CorporateActionEntry.action_id, CorporateActionEntry.user_id)
            .with_for_update()
        )
    ).all()
    holders = {(e.action_id, e.user_id): _holder(e) for e in found}
    return holders, {a.id: a for a in rows}


def _holder(e: CorporateActionEntry) -> Holder:
    return Holder(
        e.action_id, e.user_id, e.asset_id, e.currency, e.quantity_before, e.quantity_after,
        e.in_lieu_quantity, e.cash, e,
    )  # fmt: skip


def holder_for(
    holders: dict[tuple[uuid.UUID, uuid.UUID], Holder],
    action_id: uuid.UUID,
    user_id: uuid.UUID,
    asset_id: str,
    currency: str,
) -> Holder:
    key = (action_id, user_id)
    if key not in holders:
        holders[key] = Holder(action_id, user_id, asset_id, currency, ZERO, ZERO, ZERO, ZERO, None)
    return holders[key]


def write_holder(s: AsyncSession, holder: Holder, action: CorporateAction) -> None:
    """The entry row as the split would have recorded it with the trades settled before."""
    row = holder.row
    if row is None:
        row = CorporateActionEntry(
            action_id=holder.action_id,
            user_id=holder.user_id,
            asset_id=holder.asset_id,
            kind=CorporateActionKind.STOCK_SPLIT,
            created_at=action.applied_at or action.created_at,
            currency=holder.currency,
        )
        s.add(row)
        holder.row = row
        action.holders += 1
    row.quantity_before = holder.before
    row.quantity_after = holder.kept
    row.in_lieu_quantity = holder.fraction
    row.cash = holder.cash


def lieu_key(fill_id: str) -> uuid.UUID:
    """The key of one trade's move (its funds row, positions' fill, notification)."""
    return uuid.uuid5(LIEU_NAMESPACE, fill_id)


def lieu_fill_id(action_id: uuid.UUID, user_id: uuid.UUID, fill_id: str) -> str:
    """The positions' fill id of an in-flight trade's fraction (``split:`` as the split's own,
    so statements list its funds row, not a trade); within the column's 128 characters."""
    return f"{SPLIT_FILL_PREFIX}{action_id}:{user_id}:{lieu_key(fill_id)}"


def lieu_transaction(
    holder: Holder,
    symbol: str,
    amount: Decimal,
    fill_id: str,
    entry_id: uuid.UUID,
    txn_id: uuid.UUID,
    now: datetime,
) -> FundTransaction:
    """The customer's history row of the move's cash: CASH_IN_LIEU, negative when the customer
    paid back cash in lieu of a fraction it no longer holds."""
    return FundTransaction(
        id=txn_id,
        user_id=holder.user_id,
        type=TransactionType.CASH_IN_LIEU,
        amount=amount,
        currency=holder.currency,
        status=TransactionStatus.COMPLETED,
        memo=f"{symbol} split cash in lieu (trade in flight)",
        idempotency_key=f"corporate-action:{holder.action_id}:{lieu_key(fill_id)}",
        request_fingerprint=str(holder.action_id),
        journal_entry_id=entry_id,
        created_at=now,
        completed_at=now,
    )


def lieu_draft(holder: Holder, symbol: str, move: Move, fill_id: str) -> Draft:
    return split_in_flight_draft(
        holder.user_id,
        holder.action_id,
        symbol,
        holder.kept,
        move.cash,
        holder.currency,
        str(lieu_key(fill_id)),
    )


__all__ = [
    "SPLIT_EXACT",
    "Holder",
    "Move",
    "PendingSplit",
    "Step",
    "holder_for",
    "lieu_draft",
    "lieu_fill_id",
    "lieu_transaction",
    "load_holders",
    "settle_fractions",
    "split_share_price",
    "split_shares",
    "write_holder",
]
