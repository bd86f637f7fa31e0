"""The seed's request and response shapes (shared/seed, "Trading Platform Microservices
Design"), as pydantic models: they are the OpenAPI 3.1 document's schemas.

Departure from the seed, on purpose: amounts it calls "number" travel as decimal strings
("12.34"), as everywhere in Bourse (API.md section 1: never a float). Requests accept a JSON
number too (read as its shortest decimal text); answers always carry strings. Extra request
fields are refused (a typo must not be ignored silently).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from bourse.money import plain
from models.funds import cash

DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
Money = Annotated[str, Field(pattern=DECIMAL_PATTERN, examples=["12.34"])]


def _amount_text(value: object) -> object:
    if isinstance(value, bool):
        return value  # refused below: not a number
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return value


AmountIn = Annotated[
    str,
    BeforeValidator(_amount_text),
    StringConstraints(max_length=40),
    Field(description='A decimal amount, as a string ("12.34") or a JSON number.'),
]
Text = Annotated[str, StringConstraints(max_length=256)]


def dec(value: Decimal) -> str:
    """A quantity or price as GraphQL shows it: no trailing zeros, never an exponent."""
    return format(plain(value), "f")


def money(value: Decimal, currency: str) -> str:
    """Cash in its currency's minor unit ("1000.00"), as GraphQL's amounts are."""
    return format(cash(value, currency), "f")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- users ---


class RegisterRequest(Strict):
    username: Text
    email: Text
    password: Text


class RegisterResponse(BaseModel):
    userId: str
    message: str


class LoginRequest(Strict):
    email: Text
    password: Text
    otp: Text | None = Field(default=None, description="A TOTP or recovery code (2FA).")


class LoginResponse(BaseModel):
    token: str
    userId: str


class ProfileResponse(BaseModel):
    userId: str
    username: str
    email: str
    createdAt: datetime


class ProfileUpdate(Strict):
    username: Text | None = None
    email: Text | None = None


class MessageResponse(BaseModel):
    message: str


# --- portfolio ---


class PortfolioAsset(BaseModel):
    assetId: str
    quantity: Money
    averageCost: Money
    currentValue: Money


class PortfolioResponse(BaseModel):
    userId: str
    assets: list[PortfolioAsset]
    totalValue: Money


class AddAssetRequest(Strict):
    assetId: Text
    quantity: AmountIn
    purchasePrice: AmountIn
    portfolioId: Text | None = Field(
        default=None,
        description="A tracked portfolio of yours (required: the brokerage portfolio follows "
        "your trades and is not edited by hand).",
    )


class PerformanceResponse(BaseModel):
    userId: str
    startValue: Money
    endValue: Money
    percentageChange: Money


# --- orders ---

Side = Literal["BUY", "SELL"]
SubType = Literal["MARKET", "LIMIT", "STOP_LOSS", "STOP_LIMIT", "TRAILING_STOP"]
Status = Literal["PENDING", "PARTIALLY_FILLED", "EXECUTED", "CANCELLED", "REJECTED", "EXPIRED"]


class PlaceOrderRequest(Strict):
    userId: Text | None = Field(default=None, description="If given, the caller's own id.")
    assetId: Text
    orderType: Side
    quantity: AmountIn | None = None
    price: AmountIn | None = None
    orderSubType: SubType = "MARKET"
    stopPrice: AmountIn | None = None
    timeInForce: Literal["GTC", "DAY", "IOC", "FOK"] = "GTC"


class PlacedOrder(BaseModel):
    orderId: str
    status: Status


class OrderStatusResponse(BaseModel):
    orderId: str
    status: Status
    filledQuantity: Money
    remainingQuantity: Money | None


class OrderSummary(BaseModel):
    orderId: str
    assetId: str
    orderType: Side
    quantity: Money | None
    price: Money | None
    status: Status
    createdAt: datetime


class OrdersResponse(BaseModel):
    orders: list[OrderSummary]


# --- market data ---


class PriceResponse(BaseModel):
    assetId: str
    price: Money
    timestamp: datetime


class Candle(BaseModel):
    timestamp: datetime
    open: Money
    high: Money
    low: Money
    close: Money
    volume: Money


class HistoryResponse(BaseModel):
    assetId: str
    data: list[Candle]


class Mover(BaseModel):
    assetId: str
    percentageChange: Money


class SummaryResponse(BaseModel):
    topGainers: list[Mover]
    topLosers: list[Mover]
    marketIndex: Money | None
    tradingVolume: Money


# --- transactions ---


class DepositRequest(Strict):
    userId: Text | None = Field(default=None, description="If given, the caller's own id.")
    amount: AmountIn
    currency: Text
    paymentMethod: Text


class WithdrawRequest(Strict):
    userId: Text | None = Field(default=None, description="If given, the caller's own id.")
    amount: AmountIn
    currency: Text
    withdrawalMethod: Text
    currentPassword: Text | None = Field(
        default=None, description="Needed for a method never used before (fresh proof)."
    )
    otp: Text | None = None


class TransactionResult(BaseModel):
    transactionId: str
    status: Literal["PENDING", "COMPLETED", "FAILED"]


class TransactionItem(BaseModel):
    transactionId: str
    type: Literal["DEPOSIT", "WITHDRAWAL", "DIVIDEND", "CASH_IN_LIEU"]
    amount: Money
    currency: str
    status: Literal["PENDING", "COMPLETED", "FAILED"]
    timestamp: datetime


class TransactionsResponse(BaseModel):
    transactions: list[TransactionItem]
