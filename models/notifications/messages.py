"""What each producer says: the notification drafts of source events, with their dedupe keys.

Pure (no I/O). Keys name the source event, so the same event always makes the same key:

| source | key |
| --- | --- |
| an order's ACCEPTED / FILL / CANCELLED / EXPIRED / REJECTED | ``order:<order id>:<event>`` |
| a partial fill | ``order:<order id>:fill:<fill id>`` |
| a deposit or withdrawal ending | ``funds:<transaction id>:<status>`` |
| a security event | ``security:<event>:<its own id>`` (a session, a code, a change) |
| a skipped recurring run | ``recurring:<plan id>:<period>`` |
| a corporate action paid or applied | ``corporate-action:<action id>:<user id>`` |
| a statement ready | ``document:<document id>`` |
| a support reply | ``support:<message id>`` |
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from models.notifications.actions import Draft
from models.notifications.tables import Kind
from models.orders.view import OrderView
from models.quotes import display_price

ORDER_EVENTS = frozenset(
    {"ACCEPTED", "FILL", "PARTIAL_FILL", "CANCELLED", "EXPIRED", "REJECTED", "ACTIVATED"}
)


def _qty(value: Decimal | None) -> str:
    return "?" if value is None else str(display_price(value))


def _what(order: OrderView) -> str:
    side = "buy" if order.side.value == "BUY" else "sell"
    if order.quantity is not None:
        amount = f"{_qty(order.quantity)} {order.asset_id}"
    elif order.notional is not None:
        amount = f"{_qty(order.notional)} {order.currency} of {order.asset_id}"
    else:
        amount = order.asset_id
    kind = order.sub_type.value.replace("_", " ").lower()
    return f"{side} {amount} ({kind})"


def order_draft(
    user_id: uuid.UUID,
    event: str,
    order: OrderView,
    fill_id: str | None = None,
    fill_quantity: Decimal | None = None,
    fill_price: Decimal | None = None,
) -> Draft | None:
    """The notification of one order event, or None for events nobody is told about
    (TRIGGERED: the order goes on and its fills will say so)."""
    if event not in ORDER_EVENTS:
        return None
    what = _what(order)
    symbol = order.asset_id
    key = f"order:{order.id}:{event}"
    if event == "ACCEPTED":
        title, body = f"Order accepted: {symbol}", f"Your order to {what} is open."
    elif event in ("FILL", "PARTIAL_FILL"):
        done = event == "FILL"
        avg = order.average_price
        title = f"Order {'filled' if done else 'partly filled'}: {symbol}"
        body = (
            f"Your order to {what} "
            + ("is filled" if done else f"filled {_qty(fill_quantity)} at {_qty(fill_price)}")
            + f": {_qty(order.filled_quantity)} done"
            + ("" if avg is None else f" at an average of {_qty(avg)} {order.currency}")
            + "."
        )
        if not done:
            key = f"order:{order.id}:fill:{fill_id}"
    elif event == "CANCELLED":
        title = f"Order cancelled: {symbol}"
        if order.cancel_reason == "OCO":
            body = (
                f"Your order to {what} was cancelled because its linked order filled or ended "
                f"({_qty(order.filled_quantity)} filled)."
            )
        elif order.cancel_reason == "PARENT":
            body = (
                f"Your order to {what} was cancelled with the order it was attached to "
                f"({_qty(order.filled_quantity)} filled)."
            )
        elif order.cancel_reason == "COLLAR":
            body = (
                f"Your order to {what} stopped at the price collar (the market moved too far "
                f"from the reference price); {_qty(order.filled_quantity)} was filled and the "
                "rest was cancelled."
            )
        else:
            body = f"Your order to {what} was cancelled ({_qty(order.filled_quantity)} filled)."
    elif event == "ACTIVATED":
        title = f"Exit order active: {symbol}"
        body = (
            f"Your {'take-profit' if order.sub_type == 'LIMIT' else 'stop-loss'} to {what} "
            f"now covers {_qty(order.quantity)} shares."
        )
        key = f"order:{order.id}:ACTIVATED:{order.quantity}"
    elif event == "EXPIRED":
        title = f"Order expired: {symbol}"
        body = (
            f"Your day order to {what} expired at the close ({_qty(order.filled_quantity)} filled)."
        )
    else:
        title = f"Order rejected: {symbol}"
        body = f"Your order to {what} was rejected: {order.reject_reason or 'refused'}."
    return Draft(
        user_id=user_id,
        kind=Kind.ORDER,
        title=title,
        body=body,
        dedupe_key=key,
        asset_id=symbol,
        order_id=order.id,
    )


SECURITY_TEXT = {
    "NEW_DEVICE": (
        "New sign-in to your account",
        "Your account was signed in to from a device or address not seen before{detail}. "
        "If this was not you, change your password now and review your sessions.",
    ),
    "PASSWORD_CHANGED": (
        "Your password was changed",
        "The password of your account was changed; every device was signed out. If this was "
        "not you, reset your password at once.",
    ),
    "PASSWORD_RESET": (
        "Your password was reset",
        "The password of your account was reset through an emailed link; every device was "
        "signed out. If this was not you, contact support.",
    ),
    "TWO_FACTOR_ENABLED": (
        "Two-step sign-in is on",
        "Two-step sign-in was switched on for your account.",
    ),
    "TWO_FACTOR_DISABLED": (
        "Two-step sign-in is off",
        "Two-step sign-in was switched off for your account. If this was not you, change your "
        "password now.",
    ),
    "EMAIL_CHANGED": (
        "Your email address was changed",
        "The email address of your account was changed to {detail}. If this was not you, "
        "contact support.",
    ),
    "RECOVERY_CODE_USED": (
        "A recovery code was used",
        "One of your two-step recovery codes was used to sign in{detail}. Each code works once.",
    ),
}


def security_draft(user_id: uuid.UUID, event: str, ident: str, detail: str = "") -> Draft:
    title, body = SECURITY_TEXT[event]
    return Draft(
        user_id=user_id,
        kind=Kind.SECURITY,
        title=title,
        body=body.format(detail=detail),
        dedupe_key=f"security:{event}:{ident}",
        urgent=True,
    )


def funds_draft(
    user_id: uuid.UUID,
    transaction_id: uuid.UUID,
    kind: str,
    status: str,
    amount: Decimal,
    currency: str,
) -> Draft:
    noun = "Deposit" if kind == "DEPOSIT" else "Withdrawal"
    money = f"{_qty(amount)} {currency}"
    if status == "COMPLETED":
        title = f"{noun} completed"
        body = f"Your {noun.lower()} of {money} is complete."
    else:
        title = f"{noun} failed"
        body = f"Your {noun.lower()} of {money} failed" + (
            "; the money is available again." if kind == "WITHDRAWAL" else "."
        )
    return Draft(
        user_id=user_id,
        kind=Kind.FUNDS,
        title=title,
        body=body,
        dedupe_key=f"funds:{transaction_id}:{status}",
    )


def recurring_skipped_draft(
    user_id: uuid.UUID, plan_id: uuid.UUID, asset_id: str, period: str, body: str
) -> Draft:
    return Draft(
        user_id=user_id,
        kind=Kind.ORDER,
        title=f"Recurring investment in {asset_id} skipped",
        body=body,
        dedupe_key=f"recurring:{plan_id}:{period}",
        asset_id=asset_id,
        email=False,  # the plan's own email says so (models.recurring)
    )


def split_order_draft(
    user_id: uuid.UUID,
    action_id: uuid.UUID,
    order_id: uuid.UUID,
    asset_id: str,
    side: str,
    before: tuple[Decimal, Decimal | None],
    after: tuple[Decimal, Decimal | None],
) -> Draft:
    """An open order a stock split adjusted: (remaining quantity, limit or stop price) before
    and after; a quantity of 0 after means the split cancelled it."""

    def terms(quantity: Decimal, price: Decimal | None) -> str:
        return f"{_qty(quantity)}" + ("" if price is None else f" at {_qty(price)}")

    if after[0] > 0:
        body = (
            f"{asset_id} split: your open {side.lower()} order for {terms(*before)} is now "
            f"{terms(*after)}."
        )
    else:
        body = (
            f"{asset_id} split: your open {side.lower()} order for {terms(*before)} was "
            "cancelled: less than one share was left after the split."
        )
    return Draft(
        user_id=user_id,
        kind=Kind.CORPORATE_ACTION,
        title=f"Stock split: {asset_id} order adjusted",
        body=body,
        dedupe_key=f"corporate-action:{action_id}:order:{order_id}",
        asset_id=asset_id,
        order_id=order_id,
    )


def split_in_flight_draft(
    user_id: uuid.UUID,
    action_id: uuid.UUID,
    asset_id: str,
    kept: Decimal,
    cash: Decimal,
    currency: str,
    key: str,
) -> Draft:
    """A trade settled after a split it preceded: its fraction as cash in lieu (either way)."""
    money = f"{_qty(abs(cash))} {currency}"
    paid = (
        f"; {money} was paid to you in lieu of the fraction" if cash > 0
        else f"; {money} of cash in lieu was taken back for shares the split had paid for"
        if cash < 0 else ""
    )  # fmt: skip
    return Draft(
        user_id=user_id,
        kind=Kind.CORPORATE_ACTION,
        title=f"Stock split: {asset_id}",
        body=f"A trade made before the {asset_id} split settled after it: you now hold "
        f"{_qty(kept)} shares of the split{paid}.",
        dedupe_key=f"corporate-action:{action_id}:{user_id}:{key}",
        asset_id=asset_id,
    )


def debit_draft(user_id: uuid.UUID, amount: Decimal, currency: str, fill_id: str) -> Draft:
    """A settlement took more cash than the account had (a trade settled after a stock split):
    the difference is owed (``models/debits.py``)."""
    money = f"{_qty(amount)} {currency}"
    return Draft(
        user_id=user_id,
        kind=Kind.CORPORATE_ACTION,
        title="Your account owes a balance",
        body=f"A trade settled after a stock split took {money} more than your available cash: "
        f"your account owes {money}. Your next deposit repays it first; withdrawals wait "
        "until it is repaid.",
        dedupe_key=f"debit:{user_id}:{fill_id}",
    )


def corporate_action_draft(
    user_id: uuid.UUID,
    action_id: uuid.UUID,
    kind: str,
    asset_id: str,
    quantity_before: Decimal,
    quantity_after: Decimal,
    cash: Decimal,
    currency: str,
) -> Draft:
    money = f"{_qty(cash)} {currency}"
    if kind == "CASH_DIVIDEND":
        title = f"Dividend paid: {asset_id}"
        body = f"You were paid a dividend of {money} on {_qty(quantity_before)} {asset_id}."
    else:
        title = f"Stock split: {asset_id}"
        body = (
            f"{asset_id} split: your {_qty(quantity_before)} shares are now "
            f"{_qty(quantity_after)}"
            + (f", and {money} was paid for the fraction" if cash > 0 else "")
            + "."
        )
    return Draft(
        user_id=user_id,
        kind=Kind.CORPORATE_ACTION,
        title=title,
        body=body,
        dedupe_key=f"corporate-action:{action_id}:{user_id}",
        asset_id=asset_id,
    )


def statement_draft(user_id: uuid.UUID, document_id: uuid.UUID, what: str) -> Draft:
    return Draft(
        user_id=user_id,
        kind=Kind.STATEMENT,
        title=f"Your {what} is ready",
        body=f"Your {what} is ready to download under Documents.",
        dedupe_key=f"document:{document_id}",
    )


def support_reply_draft(
    user_id: uuid.UUID, message_id: uuid.UUID, subject: str, author: str, body: str
) -> Draft:
    preview = body if len(body) <= 280 else body[:279] + "…"
    return Draft(
        user_id=user_id,
        kind=Kind.SUPPORT,
        title=f"New reply: {subject}"[:200],
        body=f"{author} wrote: {preview}",
        dedupe_key=f"support:{message_id}",
        email=False,  # the desk emails a customer who is not in the chat (models.support_desk)
    )


def withdrawal_held_draft(
    user_id: uuid.UUID, transaction_id: uuid.UUID, amount: Decimal, currency: str, why: str
) -> Draft:
    """A fraud rule held a withdrawal (models/monitoring.py): the owner is told at once, so a
    thief's withdrawal is seen by the person whose account it is."""
    return Draft(
        user_id=user_id,
        kind=Kind.FUNDS,
        title="Withdrawal held for review",
        body=f"Your withdrawal of {_qty(amount)} {currency} is held for a review by our team "
        f"({why}). The money stays reserved in your account meanwhile. If you did not ask for "
        "it, change your password now and contact support.",
        dedupe_key=f"funds:{transaction_id}:HELD",
        urgent=True,
    )


KYC_TEXT = {
    "VERIFIED": ("Identity verified", "Your identity is verified: you can trade and withdraw."),
    "REJECTED": (
        "Identity not verified",
        "We could not verify your identity with the details you gave. Check them and submit "
        "them again, or contact support.",
    ),
    "NEEDS_REVIEW": (
        "Identity check under review",
        "Your identity check needs a manual review; we will tell you when it is done.",
    ),
}


def kyc_draft(user_id: uuid.UUID, status: str, ident: str) -> Draft:
    title, body = KYC_TEXT[status]
    return Draft(
        user_id=user_id,
        kind=Kind.COMPLIANCE,
        title=title,
        body=body,
        dedupe_key=f"kyc:{ident}:{status}",
    )
