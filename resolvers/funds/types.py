"""GraphQL types of the funds domain."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NewType

import strawberry
from graphql import (
    BooleanValueNode,
    FloatValueNode,
    IntValueNode,
    StringValueNode,
    ValueNode,
)
from strawberry.types.scalar import ScalarDefinition

from models.funds import AccountView, FundTransaction, cash
from models.funds import TransactionStatus as TransactionStatusModel
from models.funds import TransactionType as TransactionTypeModel
from resolvers.context import Context
from resolvers.errors import UserError
from resolvers.relay import PageInfo

TransactionType = strawberry.enum(TransactionTypeModel, name="TransactionType")
TransactionStatus = strawberry.enum(TransactionStatusModel, name="TransactionStatus")


def _amount_value(value: object) -> str:
    # Never raises: whatever arrives is checked by the service, which answers INVALID_AMOUNT in
    # the payload's errors instead of a request-level error.
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    return ""


def _amount_literal(node: ValueNode, variables: dict[str, object] | None = None) -> str:
    if isinstance(node, StringValueNode | IntValueNode | FloatValueNode):
        return str(node.value)
    if isinstance(node, BooleanValueNode):
        return str(node.value).lower()
    return ""


AmountInput = NewType("AmountInput", str)
AMOUNT_INPUT_SCALAR = strawberry.scalar(
    name="AmountInput",
    description=(
        'A decimal amount as a string, e.g. "100.50" (numbers are accepted too). Malformed, '
        "non-positive or over-precise values are answered with INVALID_AMOUNT in the payload's "
        "errors. Outputs use Decimal (also a string)."
    ),
    serialize=str,
    parse_value=_amount_value,
    parse_literal=_amount_literal,
)
# Registered in the schema's scalar_map.
SCALARS: dict[object, ScalarDefinition] = {AmountInput: AMOUNT_INPUT_SCALAR}


@strawberry.type(name="Transaction")
class TransactionNode:
    id: strawberry.ID
    type: TransactionTypeModel
    amount: Decimal
    currency: str
    status: TransactionStatusModel
    created_at: datetime
    completed_at: datetime | None
    failure_reason: str | None
    hold_reason: str | None = strawberry.field(
        description="Set while a withdrawal is held for review (WITHDRAWAL_HELD): it stays "
        "PENDING, its money reserved, until compliance releases or refuses it."
    )

    # Sealed at rest (models/funds.py); opened only when the field is asked for.
    row: strawberry.Private[FundTransaction]

    @strawberry.field(
        description="A deposit's method; for a DIVIDEND or CASH_IN_LIEU, what it paid for. "
        "Sealed at rest, shown whole only to its owner (and staff who may see the account)."
    )
    async def payment_method(self, info: strawberry.Info[Context, None]) -> str | None:
        if self.row.type is TransactionTypeModel.WITHDRAWAL:
            return None
        return await info.context.services.funds.method_of(self.row)

    @strawberry.field(description="A withdrawal's method, as `paymentMethod`.")
    async def withdrawal_method(self, info: strawberry.Info[Context, None]) -> str | None:
        if self.row.type is not TransactionTypeModel.WITHDRAWAL:
            return None
        return await info.context.services.funds.method_of(self.row)

    @classmethod
    def from_model(cls, txn: FundTransaction) -> TransactionNode:
        return cls(
            id=strawberry.ID(str(txn.id)),
            type=txn.type,
            amount=cash(txn.amount, txn.currency),
            currency=txn.currency,
            status=txn.status,
            row=txn,
            created_at=txn.created_at,
            completed_at=txn.completed_at,
            failure_reason=txn.failure_reason,
            hold_reason=txn.hold_reason,
        )


@strawberry.type
class TransactionEdge:
    cursor: str
    node: TransactionNode


@strawberry.type
class TransactionConnection:
    edges: list[TransactionEdge]
    page_info: PageInfo


@strawberry.type
class CashBalance:
    currency: str
    total: Decimal
    available: Decimal = strawberry.field(description="total - held")
    held: Decimal = strawberry.field(description="Reserved by open orders and withdrawals.")


@strawberry.type(name="Account")
class AccountType:
    cash: list[CashBalance]
    buying_power: Decimal = strawberry.field(
        description="Available cash in the base currency (margin and FX come later)."
    )
    base_currency: str

    @classmethod
    def from_view(cls, view: AccountView) -> AccountType:
        return cls(
            cash=[
                CashBalance(currency=c.currency, total=c.total, available=c.available, held=c.held)
                for c in view.cash
            ],
            buying_power=view.buying_power,
            base_currency=view.base_currency,
        )


@strawberry.input
class DepositInput:
    amount: AmountInput
    currency: str
    payment_method: str
    idempotency_key: str


@strawberry.input
class WithdrawInput:
    amount: AmountInput
    currency: str
    withdrawal_method: str
    idempotency_key: str
    current_password: str | None = strawberry.field(
        default=None,
        description="Needed for a method never used before, unless this session signed in "
        "with the password in the last few minutes (REAUTHENTICATION_REQUIRED).",
    )
    otp: str | None = strawberry.field(
        default=None, description="With currentPassword, when two-factor sign-in is on."
    )


@strawberry.type
class FundsPayload:
    transaction: TransactionNode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
