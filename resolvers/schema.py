"""The one Strawberry schema: each domain contributes a Query and Mutation mixin."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from bourse.settings import Settings, get_settings
from resolvers.accounts.audit import AuditQuery
from resolvers.accounts.schema import AccountsMutation, AccountsQuery
from resolvers.accounts.sessions import SessionsMutation, SessionsQuery
from resolvers.availability import DependencyErrors
from resolvers.compliance.schema import ComplianceMutation, ComplianceQuery
from resolvers.documents.analytics import AnalyticsQuery
from resolvers.documents.schema import DocumentsMutation, DocumentsQuery
from resolvers.errors import MaskUnexpected, should_mask
from resolvers.execution import BourseExecutor
from resolvers.funds.schema import FundsMutation, FundsQuery
from resolvers.funds.types import SCALARS as FUNDS_SCALARS
from resolvers.inputs import compile_inputs
from resolvers.introspection import ProductionSchemaPrivacy
from resolvers.limits import limits_rule
from resolvers.market.history import HistoryQuery
from resolvers.market.news import NewsQuery
from resolvers.market.quotes import QuotesQuery, QuotesSubscription
from resolvers.market.schema import AssetsMutation, AssetsQuery
from resolvers.market.summary import SummaryQuery
from resolvers.notifications.alerts import AlertsMutation, AlertsQuery
from resolvers.notifications.inbox import InboxMutation, InboxQuery, InboxSubscription
from resolvers.notifications.preferences import PreferencesMutation, PreferencesQuery
from resolvers.orders.recurring import RecurringMutation, RecurringQuery
from resolvers.orders.schema import OrdersMutation, OrdersQuery, OrdersSubscription
from resolvers.partners.schema import PartnersMutation, PartnersQuery
from resolvers.partners.webhooks import WebhooksMutation, WebhooksQuery
from resolvers.portfolio.schema import PortfolioMutation, PortfolioQuery
from resolvers.support.schema import SupportMutation, SupportQuery, SupportSubscription
from resolvers.telemetry import OperationTelemetry


@strawberry.type
class Query(
    AccountsQuery,
    SessionsQuery,
    AuditQuery,
    ComplianceQuery,
    FundsQuery,
    AssetsQuery,
    HistoryQuery,
    SummaryQuery,
    NewsQuery,
    QuotesQuery,
    OrdersQuery,
    RecurringQuery,
    PortfolioQuery,
    SupportQuery,
    DocumentsQuery,
    AnalyticsQuery,
    AlertsQuery,
    InboxQuery,
    PreferencesQuery,
    PartnersQuery,
    WebhooksQuery,
):
    pass


@strawberry.type
class Mutation(
    AccountsMutation,
    SessionsMutation,
    ComplianceMutation,
    FundsMutation,
    AssetsMutation,
    OrdersMutation,
    RecurringMutation,
    PortfolioMutation,
    SupportMutation,
    DocumentsMutation,
    AlertsMutation,
    InboxMutation,
    PreferencesMutation,
    PartnersMutation,
    WebhooksMutation,
):
    pass


@strawberry.type
class Subscription(QuotesSubscription, OrdersSubscription, SupportSubscription, InboxSubscription):
    pass


class BourseSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Errors raised on purpose (UNAUTHENTICATED, validation of the document, …) are answers,
        # not incidents: only unexpected exceptions are logged, with their traceback.
        super().process_errors([e for e in errors if should_mask(e)], execution_context)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    s = settings or get_settings()
    # Ours, not Strawberry's QueryDepthLimiter/MaxAliasesLimiter: those re-walk a fragment at
    # every spread (exponential in nested spreads); see resolvers/limits.py.
    limit_rules = [
        limits_rule(
            s.graphql_max_depth,
            s.graphql_max_aliases,
            s.graphql_max_fragment_spreads,
            s.graphql_max_introspection_depth,
            s.graphql_max_cost,
        )
    ]
    built = BourseSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=True, scalar_map={**FUNDS_SCALARS}),
        # Plain lists completed in one loop, shared subscription events executed once per
        # selection (resolvers/execution.py).
        execution_context_class=BourseExecutor,
        # Factories, so each request gets fresh extension state. The caches are module-level
        # LRUs keyed by size (unbounded unless capped: capped here). The depth and alias rules
        # are built once: new rule classes per request would make every ValidationCache key new.
        extensions=[
            lambda: ParserCache(maxsize=s.graphql_cache_size),
            lambda: AddValidationRules(limit_rules),
            lambda: ValidationCache(maxsize=s.graphql_cache_size),
            lambda: MaxTokensLimiter(max_token_count=s.graphql_max_tokens),
            OperationTelemetry,
            MaskUnexpected,
            DependencyErrors,  # after MaskUnexpected: it runs first on the way out
            *([ProductionSchemaPrivacy] if s.env == "production" else []),
        ],
    )
    compile_inputs(built)  # input objects converted by a plan per type (resolvers/inputs.py)
    return built


schema = build_schema()
