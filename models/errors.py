"""Business failures as data: every expected failure is a code, a field and a message.

Services raise `DomainError`; the GraphQL layer turns it into the payload's `errors` list.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class ErrorCode(enum.StrEnum):
    # generic
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    NOT_ALLOWED = "NOT_ALLOWED"
    RATE_LIMITED = "RATE_LIMITED"
    # PostgreSQL or Redis cannot be reached now (models.availability); nothing was done
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    # accounts
    USERNAME_TAKEN = "USERNAME_TAKEN"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_USERNAME = "INVALID_USERNAME"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    OTP_REQUIRED = "OTP_REQUIRED"
    INVALID_OTP = "INVALID_OTP"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    INVALID_TOKEN = "INVALID_TOKEN"
    INVALID_PHONE_NUMBER = "INVALID_PHONE_NUMBER"
    INVALID_DATE_OF_BIRTH = "INVALID_DATE_OF_BIRTH"
    INVALID_LANGUAGE = "INVALID_LANGUAGE"
    UNSUPPORTED_CURRENCY = "UNSUPPORTED_CURRENCY"
    TWO_FACTOR_ALREADY_ENABLED = "TWO_FACTOR_ALREADY_ENABLED"
    TWO_FACTOR_NOT_ENABLED = "TWO_FACTOR_NOT_ENABLED"
    TWO_FACTOR_NOT_STARTED = "TWO_FACTOR_NOT_STARTED"
    REAUTHENTICATION_REQUIRED = "REAUTHENTICATION_REQUIRED"
    ACCOUNT_NOT_EMPTY = "ACCOUNT_NOT_EMPTY"
    # KYC, AML and fraud controls (issue 17)
    KYC_REQUIRED = "KYC_REQUIRED"
    KYC_ALREADY_SUBMITTED = "KYC_ALREADY_SUBMITTED"
    INVALID_TAX_ID = "INVALID_TAX_ID"
    ACCOUNT_FROZEN = "ACCOUNT_FROZEN"
    # funds
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    # assets
    INVALID_SYMBOL = "INVALID_SYMBOL"
    INVALID_TICK_SIZE = "INVALID_TICK_SIZE"
    INVALID_CALENDAR = "INVALID_CALENDAR"
    ASSET_EXISTS = "ASSET_EXISTS"
    # orders
    UNKNOWN_ASSET = "UNKNOWN_ASSET"
    ASSET_NOT_TRADABLE = "ASSET_NOT_TRADABLE"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_PRICE = "INVALID_PRICE"
    INSUFFICIENT_BUYING_POWER = "INSUFFICIENT_BUYING_POWER"
    INSUFFICIENT_SHARES = "INSUFFICIENT_SHARES"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    NOT_CANCELLABLE = "NOT_CANCELLABLE"
    # the cancel is recorded but the exchange has not answered in time: it applies when it does
    CANCEL_PENDING = "CANCEL_PENDING"
    MARKET_CLOSED = "MARKET_CLOSED"
    INVALID_ORDER_TYPE = "INVALID_ORDER_TYPE"
    INVALID_ORDER_CLASS = "INVALID_ORDER_CLASS"  # a bracket / OCO / OTO that does not fit
    # portfolio
    INVALID_DATE_RANGE = "INVALID_DATE_RANGE"
    TOO_MANY_PORTFOLIOS = "TOO_MANY_PORTFOLIOS"
    PORTFOLIO_FULL = "PORTFOLIO_FULL"
    TOO_MANY_WATCHLISTS = "TOO_MANY_WATCHLISTS"
    WATCHLIST_FULL = "WATCHLIST_FULL"
    TOO_MANY_RECURRING_INVESTMENTS = "TOO_MANY_RECURRING_INVESTMENTS"
    # market data history
    RANGE_TOO_LARGE = "RANGE_TOO_LARGE"
    # market data
    TOO_MANY_ASSETS = "TOO_MANY_ASSETS"
    # support
    MESSAGE_TOO_LONG = "MESSAGE_TOO_LONG"
    TICKET_CLOSED = "TICKET_CLOSED"
    TICKET_NOT_RESOLVED = "TICKET_NOT_RESOLVED"
    INVALID_STATUS_TRANSITION = "INVALID_STATUS_TRANSITION"
    INVALID_ASSIGNEE = "INVALID_ASSIGNEE"
    ATTACHMENT_TOO_LARGE = "ATTACHMENT_TOO_LARGE"
    UNSUPPORTED_ATTACHMENT = "UNSUPPORTED_ATTACHMENT"
    # corporate actions
    OPEN_ORDERS = "OPEN_ORDERS"
    # notifications and price alerts
    INVALID_THRESHOLD = "INVALID_THRESHOLD"
    TOO_MANY_ALERTS = "TOO_MANY_ALERTS"
    # partners: keys, apps, consents, trusted documents
    INVALID_SCOPE = "INVALID_SCOPE"
    TOO_MANY_API_KEYS = "TOO_MANY_API_KEYS"
    INVALID_REDIRECT_URI = "INVALID_REDIRECT_URI"
    INVALID_DOCUMENT = "INVALID_DOCUMENT"
    # partner webhooks
    INVALID_URL = "INVALID_URL"
    INVALID_EVENT_TYPE = "INVALID_EVENT_TYPE"
    TOO_MANY_WEBHOOKS = "TOO_MANY_WEBHOOKS"


@dataclass(frozen=True, slots=True)
class Problem:
    code: ErrorCode
    message: str
    field: str | None = None


class DomainError(Exception):
    """One or more expected business failures; nothing was changed."""

    def __init__(self, *problems: Problem) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems: tuple[Problem, ...] = problems

    @classmethod
    def one(cls, code: ErrorCode, message: str, field: str | None = None) -> DomainError:
        return cls(Problem(code, message, field))


class ProblemCollector:
    """Run several checks, keep every failure, raise them together."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def check(self, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except DomainError as exc:
            self.problems.extend(exc.problems)
            return None

    def add(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        self.problems.append(Problem(code, message, field))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DomainError(*self.problems)
