"""Recurring investments (API.md section 5): a customer's plans to buy a fixed amount of an asset
every day, week, two weeks or month (``models.recurring``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from models.errors import ErrorCode
from models.recurring import Frequency as FrequencyModel
from models.recurring import PlanStatus, RecurringInvestment
from resolvers.calls import SignedIn, query
from resolvers.errors import UserError
from resolvers.mutations import mutation
from resolvers.permissions import IsAuthenticated, MayMoveMoney

Frequency = strawberry.enum(FrequencyModel, name="RecurringFrequency")
RecurringStatus = strawberry.enum(PlanStatus, name="RecurringInvestmentStatus")


@strawberry.type(
    name="RecurringInvestment",
    description="A plan buying `notional` of an asset every period, as a market order at the "
    "first market open of each period date (once per period; a run without enough buying "
    "power is skipped, the customer is emailed and the plan carries on).",
)
class RecurringInvestmentType:
    id: strawberry.ID
    asset_id: str
    notional: Decimal = strawberry.field(description="In the asset's currency.")
    currency: str
    frequency: FrequencyModel
    start_date: dt.date
    next_run_on: dt.date = strawberry.field(description="The period date of the next run.")
    next_run_at: dt.datetime = strawberry.field(
        description="When the next run is due: the first market open on or after nextRunOn."
    )
    status: PlanStatus
    created_at: dt.datetime

    @classmethod
    def from_model(cls, p: RecurringInvestment) -> RecurringInvestmentType:
        return cls(
            id=strawberry.ID(str(p.id)),
            asset_id=p.asset_id,
            notional=p.notional,
            currency=p.currency,
            frequency=p.frequency,
            start_date=p.anchor,
            next_run_on=p.next_run_on,
            next_run_at=p.next_run_at,
            status=p.status,
            created_at=p.created_at,
        )


@strawberry.input
class CreateRecurringInvestmentInput:
    asset_id: str
    notional: str = strawberry.field(description="A decimal string, in the asset's currency.")
    frequency: FrequencyModel
    start_date: dt.date | None = strawberry.field(
        default=None, description="The first period date (default: today, UTC)."
    )


@strawberry.type
class RecurringInvestmentPayload:
    recurring_investment: RecurringInvestmentType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


CHANGE_ERRORS = (ErrorCode.NOT_FOUND, ErrorCode.NOT_CANCELLABLE)


def _payload(plan: RecurringInvestment) -> RecurringInvestmentPayload:
    return RecurringInvestmentPayload(recurring_investment=RecurringInvestmentType.from_model(plan))


@strawberry.type
class RecurringQuery:
    @query(IsAuthenticated, description="The signed-in user's recurring investments, oldest first.")
    async def recurring_investments(self, call: SignedIn) -> list[RecurringInvestmentType]:
        found = await call.services.recurring.list_for(call.principal.user_id)
        return [RecurringInvestmentType.from_model(p) for p in found]


@strawberry.type
class RecurringMutation:
    @mutation(
        MayMoveMoney,
        errors=(
            ErrorCode.UNKNOWN_ASSET,
            ErrorCode.ASSET_NOT_TRADABLE,
            ErrorCode.INVALID_AMOUNT,
            ErrorCode.INVALID_INPUT,
            ErrorCode.TOO_MANY_RECURRING_INVESTMENTS,
        ),
        payload=RecurringInvestmentPayload,
        description="Start buying an amount of an asset every period.",
    )
    async def create_recurring_investment(
        self, call: SignedIn, input: CreateRecurringInvestmentInput
    ) -> RecurringInvestmentPayload:
        plan = await call.services.recurring.create(
            call.principal.user_id, input.asset_id, input.notional, input.frequency,
            input.start_date,
        )  # fmt: skip
        return _payload(plan)

    @mutation(
        IsAuthenticated,
        errors=CHANGE_ERRORS,
        payload=RecurringInvestmentPayload,
        description="Stop the runs until resumed (already paused: no change).",
    )
    async def pause_recurring_investment(
        self, call: SignedIn, id: strawberry.ID
    ) -> RecurringInvestmentPayload:
        plan = await call.services.recurring.pause(call.principal.user_id, id)
        return _payload(plan)

    @mutation(
        IsAuthenticated,
        errors=CHANGE_ERRORS,
        payload=RecurringInvestmentPayload,
        description="Run again from the next period date (missed periods are not made up).",
    )
    async def resume_recurring_investment(
        self, call: SignedIn, id: strawberry.ID
    ) -> RecurringInvestmentPayload:
        plan = await call.services.recurring.resume(call.principal.user_id, id)
        return _payload(plan)

    @mutation(
        IsAuthenticated,
        errors=CHANGE_ERRORS,
        payload=RecurringInvestmentPayload,
        description="End the plan for good (already cancelled: no change).",
    )
    async def cancel_recurring_investment(
        self, call: SignedIn, id: strawberry.ID
    ) -> RecurringInvestmentPayload:
        plan = await call.services.recurring.cancel(call.principal.user_id, id)
        return _payload(plan)
