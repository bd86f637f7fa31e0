"""createPriceAlert, priceAlerts, cancelPriceAlert (``models.notifications.alerts``)."""

from __future__ import annotations

import strawberry

from models.errors import ErrorCode
from models.notifications import AlertStatus
from resolvers.calls import SignedIn, query
from resolvers.mutations import mutation
from resolvers.notifications.types import (
    CreatePriceAlertInput,
    PriceAlertPayload,
    PriceAlertType,
)
from resolvers.permissions import IsAuthenticated


@strawberry.type
class AlertsQuery:
    @query(IsAuthenticated, description="Your price alerts, oldest first.")
    async def price_alerts(
        self, call: SignedIn, status: AlertStatus | None = None
    ) -> list[PriceAlertType]:
        found = await call.services.alerts.list_for(call.principal.user_id, status)
        return [PriceAlertType.from_model(a) for a in found]


@strawberry.type
class AlertsMutation:
    @mutation(
        IsAuthenticated,
        errors=(
            ErrorCode.UNKNOWN_ASSET,
            ErrorCode.INVALID_THRESHOLD,
            ErrorCode.TOO_MANY_ALERTS,
            ErrorCode.INVALID_INPUT,
        ),
        payload=PriceAlertPayload,
        description="Tell me when the price reaches a level (PRICE_ABOVE / PRICE_BELOW) or "
        "moves a percentage from the previous close (PERCENT_UP / PERCENT_DOWN). An alert "
        "the price already satisfies is refused (INVALID_THRESHOLD says so); at most 200 "
        "active alerts (TOO_MANY_ALERTS); INVALID_INPUT: the cool-down.",
    )
    async def create_price_alert(
        self, call: SignedIn, input: CreatePriceAlertInput
    ) -> PriceAlertPayload:
        alert = await call.services.alerts.create(
            call.principal.user_id,
            input.asset_id,
            input.condition,
            input.threshold,
            input.repeat,
            input.cooldown_minutes,
        )
        return PriceAlertPayload(alert=PriceAlertType.from_model(alert))

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND,),
        payload=PriceAlertPayload,
        description="Cancel an active alert (a triggered or cancelled one is returned as is).",
    )
    async def cancel_price_alert(self, call: SignedIn, id: strawberry.ID) -> PriceAlertPayload:
        alert = await call.services.alerts.cancel(call.principal.user_id, str(id))
        return PriceAlertPayload(alert=PriceAlertType.from_model(alert))
