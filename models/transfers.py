"""Stock transfers in from other brokers (ACATS), recorded by ADMIN.

`record_transfer_in` books user SHARES +q against the platform's TRANSFER clearing account for
the asset (one ledger entry) and opens a lot whose cost is `costBasis` (the TOTAL cost of the
shares transferred, as ACATS reports it), acquired at `acquiredAt` (default now; the original
purchase date keeps long/short-term right), and records the flow on the default portfolio.
Optional `idempotencyKey`, unique per user: the same key and request returns the first
transfer; a different request with it is IDEMPOTENCY_KEY_REUSED.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy import (
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from bourse.money import MINOR_UNITS, plain
from models import validation
from models.assets import Asset
from models.constraints import violated_constraint
from models.errors import DomainError, ErrorCode, Problem, ProblemCollector
from models.ledger import AccountKind, Ledger, Leg
from models.portfolio_tables import (
    PortfolioFlow,
    StockTransfer,
)
from models.portfolios import Portfolios, clean_symbol, parse_id
from models.positions import LotSource, open_lot
from models.users import User
from models.valuation import (
    market_value,
)


@dataclass(frozen=True, slots=True)
class TransferRequest:
    user_id: str
    asset_id: str
    quantity: str | None
    cost_basis: str | None
    acquired_at: datetime | None = None
    idempotency_key: str | None = None


class TransfersIn:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ledger: Ledger,
        redis: Redis,
        redis_prefix: str,
    ) -> None:
        self._sm = sessionmaker
        self.ledger = ledger
        self.redis = redis
        self.prefix = redis_prefix

    async def record(
        self, request: TransferRequest, recorded_by: uuid.UUID | None = None
    ) -> StockTransfer:
        checks = ProblemCollector()
        user_id = parse_id(request.user_id)
        symbol = clean_symbol(request.asset_id)
        key = (request.idempotency_key or "").strip() or None
        if key is not None and (len(key) > 128 or not key.isprintable()):
            checks.problems.append(
                Problem(ErrorCode.INVALID_INPUT, "The idempotency key: 1 to 128 characters.",
                        "idempotencyKey")
            )  # fmt: skip
        acquired = request.acquired_at or utcnow()
        if acquired.tzinfo is None or acquired > utcnow():
            checks.problems.append(
                Problem(ErrorCode.INVALID_INPUT, "acquiredAt is a past date with an offset.",
                        "acquiredAt")
            )  # fmt: skip
        async with self._sm() as s:
            user = None if user_id is None else await s.get(User, user_id)
            asset = await s.get(Asset, symbol) if symbol else None
        if user is None:
            checks.problems.append(Problem(ErrorCode.NOT_FOUND, "No such user.", "userId"))
        if asset is None:
            checks.problems.append(Problem(ErrorCode.UNKNOWN_ASSET, f"No asset {symbol}.",
                                           "assetId"))  # fmt: skip
        qty = checks.check(
            lambda: validation.parse_decimal(
                request.quantity, field="quantity", code=ErrorCode.INVALID_QUANTITY,
                what="The quantity", max_decimals=18,
            )
        )  # fmt: skip
        if qty is not None and asset is not None and qty % asset.quantity_increment != 0:
            checks.problems.append(
                Problem(
                    ErrorCode.INVALID_QUANTITY,
                    f"{symbol} trades in multiples of {plain(asset.quantity_increment)}.",
                    "quantity",
                )
            )
        places = MINOR_UNITS.get(asset.currency if asset else "USD", 2)
        cost = checks.check(
            lambda: validation.parse_decimal(
                request.cost_basis, field="costBasis", code=ErrorCode.INVALID_AMOUNT,
                what="The cost basis", max_decimals=places, allow_zero=True,
            )
        )  # fmt: skip
        checks.raise_if_any()
        assert user is not None
        assert asset is not None
        assert qty is not None
        assert cost is not None
        fingerprint = hashlib.sha256(
            f"{symbol}|{qty.normalize()}|{cost.normalize()}|{acquired.isoformat()}".encode()
            if request.acquired_at
            else f"{symbol}|{qty.normalize()}|{cost.normalize()}".encode()
        ).hexdigest()
        if key is not None:
            existing = await self._transfer_by_key(user.id, key, fingerprint)
            if existing is not None:
                return existing
        try:
            async with self._sm.begin() as s:
                transfer_id = uuid.uuid4()
                shares = await self.ledger.account_id(s, user.id, AccountKind.SHARES, symbol)
                clearing = await self.ledger.account_id(s, None, AccountKind.TRANSFER, symbol)
                entry = await self.ledger.post(
                    s,
                    "TRANSFER_IN",
                    [Leg(shares, symbol, qty), Leg(clearing, symbol, -qty)],
                    user_id=user.id,
                    reference_id=transfer_id,
                )
                lot = await open_lot(
                    s, user_id=user.id, asset_id=symbol, quantity=qty, cost=cost,
                    acquired_at=acquired, source=LotSource.TRANSFER, source_id=str(transfer_id),
                )  # fmt: skip
                transfer = StockTransfer(
                    id=transfer_id, user_id=user.id, asset_id=symbol, quantity=qty,
                    cost_basis=cost, acquired_at=acquired, idempotency_key=key,
                    request_fingerprint=fingerprint, journal_entry_id=entry, lot_id=lot,
                    recorded_by=recorded_by, created_at=utcnow(),
                )  # fmt: skip
                s.add(transfer)
                await s.flush()  # a racing duplicate key fails here, before anything commits
                portfolio = await Portfolios.ensure_default(s, user.id)
                value, base = await market_value(s, self.redis, self.prefix, user.id, asset, qty)
                s.add(
                    PortfolioFlow(
                        portfolio_id=portfolio.id, user_id=user.id, kind="TRANSFER_IN",
                        amount=value, currency=base, reference=str(transfer_id),
                        at=transfer.created_at,
                    )
                )  # fmt: skip
        except IntegrityError as exc:
            if key is None or violated_constraint(exc) != "uq_stock_transfers_idempotency":
                raise
            again = await self._transfer_by_key(user.id, key, fingerprint)
            assert again is not None
            return again
        return transfer

    async def _transfer_by_key(
        self, user_id: uuid.UUID, key: str, fingerprint: str
    ) -> StockTransfer | None:
        async with self._sm() as s:
            found = (
                await s.execute(
                    select(StockTransfer).where(
                        StockTransfer.user_id == user_id, StockTransfer.idempotency_key == key
                    )
                )
            ).scalar_one_or_none()
        if found is not None and found.request_fingerprint != fingerprint:
            raise DomainError.one(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "This idempotency key was already used for a different transfer.",
                "idempotencyKey",
            )
        return found
