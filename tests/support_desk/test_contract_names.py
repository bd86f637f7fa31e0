"""API.md section 10's names exist in the exported schema with the promised shapes."""

from __future__ import annotations

from graphql import GraphQLEnumType, GraphQLObjectType, build_schema

from tests.test_contract import ROOT

SDL = build_schema((ROOT / "graphql" / "schema.graphql").read_text())


def fields(type_name: str) -> set[str]:
    kind = SDL.get_type(type_name)
    assert isinstance(kind, GraphQLObjectType), type_name
    return set(kind.fields)


def args(root: GraphQLObjectType | None, name: str) -> set[str]:
    assert root is not None
    return set(root.fields[name].args)


def test_section_10_names() -> None:
    query, mutation, subscription = SDL.query_type, SDL.mutation_type, SDL.subscription_type
    assert args(query, "helpArticles") >= {"search", "category", "locale", "first", "after"}
    assert args(query, "helpArticle") == {"slug", "locale"}
    assert args(query, "supportTickets") >= {"status", "first", "after", "assigneeId", "queue"}
    assert args(query, "supportTicket") == {"id"}
    assert fields("HelpArticle") >= {"id", "slug", "title", "body", "category", "locale",
                                     "updatedAt", "snippet"}  # fmt: skip
    assert fields("SupportTicket") >= {"id", "subject", "category", "status", "priority",
                                       "assignee", "messages", "slaBreached", "createdAt",
                                       "updatedAt"}  # fmt: skip
    assert fields("SupportMessage") >= {"id", "ticketId", "author", "body", "internal",
                                        "createdAt"}  # fmt: skip
    assert fields("SupportAuthor") >= {"id", "username", "role"}
    assert args(mutation, "createSupportTicket") == {"input"}
    assert args(mutation, "sendSupportMessage") == {"input"}
    assert args(mutation, "assignTicket") == {"ticketId", "assigneeId"}
    assert args(mutation, "setTicketStatus") == {"ticketId", "status"}
    assert args(mutation, "rateTicket") == {"ticketId", "rating", "comment"}
    for name in ("createSupportTicket", "assignTicket", "setTicketStatus", "rateTicket"):
        assert mutation is not None
        assert str(mutation.fields[name].type).rstrip("!") == "SupportTicketPayload"
    assert fields("SupportTicketPayload") == {"ticket", "errors"}
    assert fields("SupportMessagePayload") == {"message", "errors"}
    assert args(subscription, "supportMessages") == {"ticketId"}
    category = SDL.get_type("SupportCategory")
    assert isinstance(category, GraphQLEnumType)
    assert set(category.values) == {"ACCOUNT", "FUNDING", "ORDERS", "TAXES", "SECURITY", "OTHER"}
    status = SDL.get_type("SupportTicketStatus")
    assert isinstance(status, GraphQLEnumType)
    assert set(status.values) == {"NEW", "OPEN", "PENDING_CUSTOMER", "RESOLVED", "CLOSED"}
    priority = SDL.get_type("SupportTicketPriority")
    assert isinstance(priority, GraphQLEnumType)
    assert set(priority.values) == {"LOW", "NORMAL", "HIGH", "URGENT"}
    create = SDL.get_type("CreateSupportTicketInput")
    assert create is not None
    assert set(create.fields) == {"subject", "body", "category", "orderId", "transactionId"}  # type: ignore[attr-defined]
