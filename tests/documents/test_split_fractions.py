"""The in-flight fraction rule across several splits (``settle_fractions``), against its
definition: a party's parts of the splits a trade preceded, moved by the rule, end exactly
where the splits would have left them had the trade settled before the first (recomputed
from scratch: the holding plus the trade, split after split), and the moves add up to the
difference. Pure arithmetic; the platform test is ``test_split_trade_in_flight.py``."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

from models.corporate_actions import in_lieu_terms
from models.split_in_flight import Holder, PendingSplit, settle_fractions, split_shares

D = Decimal
USER = uuid.uuid4()


def parts(
    holding: Decimal, splits: list[PendingSplit], increment: Decimal
) -> list[tuple[Decimal, Decimal, Decimal, Decimal]]:
    """What each split records for a holding held through them: (before, kept, fraction,
    cash), the kept increments carried to the next split (the split's own rule)."""
    out = []
    for sp in splits:
        after = split_shares(holding, sp.numerator, sp.denominator)
        kept, fraction, cash = in_lieu_terms(after, increment, sp.price, "USD")
        out.append((holding, kept, fraction, cash))
        holding = kept
    return out


def test_the_moves_leave_each_party_as_if_the_trade_had_settled_before_the_first_split() -> None:
    # Ratios exact at the ledger's 18 decimals: with a non-terminating one (1-for-3) the split
    # truncates each lot apart (1/3 + 5/3 = 1.999...), so "as if" depends on the lots.
    ratios = [(3, 2), (2, 1), (1, 2), (5, 4)]
    prices = [D("20.00"), D("13.33"), D("7.51")]
    checked = 0
    for increment in (D(1), D("0.01")):
        for (r1, r2), held, trade in itertools.product(
            itertools.product(ratios, repeat=2),
            (D(0), D(1), D(3), D(5), D("2.37")),
            (D(3), D(-3), D(1), D(-1), D("0.5")),
        ):
            if held % increment or trade % increment or held + trade < 0:
                continue
            splits = [PendingSplit(*r1, prices[0]), PendingSplit(*r2, prices[1])]
            seen = parts(held, splits, increment)  # what the splits recorded, without it
            want = parts(held + trade, splits, increment)  # had it settled before the first
            holders = [
                Holder(uuid.uuid4(), USER, "X", "USD", before, kept, fraction, cash, None)
                for before, kept, fraction, cash in seen
            ]
            quantity = trade
            for sp in splits:
                quantity = split_shares(quantity, sp.numerator, sp.denominator)
            steps = settle_fractions(holders, splits, trade, quantity, increment)
            assert steps is not None
            got = [(h.before, h.kept, h.fraction, h.cash) for h in holders]
            assert got == want, (r1, r2, held, trade, increment)
            # The holder has K + q of the latest split; the moves bring it to K'.
            shares = sum((st.move.shares for st in steps), D(0))
            assert seen[-1][1] + quantity + shares == want[-1][1]
            cash = sum((st.move.cash for st in steps), D(0))
            assert cash == sum((w[3] - s[3] for w, s in zip(want, seen, strict=True)), D(0))
            checked += 1
    assert checked > 100


def test_one_split_is_the_rule_for_one_split() -> None:
    """3-for-2, the buyer held 1 and buys 3 (pair B of the platform test): 4 -> 6, no
    fraction, so the 0.5 the split paid for is taken back with its 10.00."""
    split = PendingSplit(3, 2, D("20.00"))
    holder = Holder(uuid.uuid4(), USER, "X", "USD", D(1), D(1), D("0.5"), D("10.00"), None)
    (step,) = settle_fractions([holder], [split], D(3), D("4.5"), D(1)) or []
    assert (step.move.shares, step.move.cash, step.price) == (D("0.5"), D("-10.00"), D("20.00"))
    assert (holder.before, holder.kept, holder.fraction, holder.cash) == (D(4), D(6), D(0), D(0))


def test_a_holding_below_zero_changes_nothing() -> None:
    split = PendingSplit(3, 2, D("20.00"))
    holder = Holder(uuid.uuid4(), USER, "X", "USD", D(1), D(1), D("0.5"), D("10.00"), None)
    assert settle_fractions([holder], [split], D(-3), D("-4.5"), D(1)) is None
    assert (holder.before, holder.kept, holder.fraction, holder.cash) == (
        D(1), D(1), D("0.5"), D("10.00")
    )  # fmt: skip
