"""Broken object-level authorisation, walked over the whole schema (issue 17).

Customer A owns one of everything a customer can own (an order, a portfolio, a watchlist, a
support ticket, a document, a price alert, a recurring investment, a notification, a session).
The test introspects the live schema, finds every query, mutation and subscription field that
takes an id (as an argument, or inside an input object), and calls each one as customer B with
each of A's ids. Every call must be refused (a top-level or payload error, or null / an empty
list), and no response may carry anything of A's; afterwards A's objects are exactly as they
were. The walk is generic: a field added later is covered without anyone listing it, and a new
leak fails here. The control: A, asking the same queries with its own ids, gets its objects.
"""

from __future__ import annotations

import json
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    build_client_schema,
    get_introspection_query,
)

from models.services import Services
from tests.funds.helpers import deposit
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset, placed, trader
from tests.support.server import Api

# Readable by anyone signed in, by design: nothing here belongs to a customer.
PUBLIC = {"rateHelpArticle"}
REFUSALS = {"NOT_FOUND", "FORBIDDEN", "NOT_CANCELLABLE"}
SECRET = "bola-secret-of-a"


def _base(t: Any) -> Any:
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    return t


def _has_id(t: Any, seen: frozenset[str] = frozenset()) -> bool:
    b = _base(t)
    if b.name == "ID":
        return True
    if isinstance(b, GraphQLInputObjectType) and b.name not in seen:
        return any(_has_id(f.type, seen | {b.name}) for f in b.fields.values())
    return False


def _value(t: GraphQLInputType, name: str, victim_id: str, asset: str) -> Any:
    """A well-formed value of type ``t`` whose every ID is ``victim_id``."""
    if isinstance(t, GraphQLNonNull):
        return _value(t.of_type, name, victim_id, asset)
    if isinstance(t, GraphQLList):
        return [_value(t.of_type, name, victim_id, asset)]
    if isinstance(t, GraphQLEnumType):
        return next(iter(t.values))
    if isinstance(t, GraphQLInputObjectType):
        return {
            k: _value(f.type, k, victim_id, asset)
            for k, f in t.fields.items()
            if isinstance(f.type, GraphQLNonNull) or _has_id(f.type)
        }
    return {
        "ID": victim_id,
        "Int": 1,
        "Boolean": False,
        "AmountInput": "1",
        "Decimal": "1",
        "Date": "2026-01-05",
        "DateTime": "2026-01-05T00:00:00Z",
    }.get(t.name, asset if name.lower().startswith("asset") else "probe")


def _selection(t: GraphQLOutputType, depth: int = 0) -> str:
    b = _base(t)
    if not isinstance(b, GraphQLObjectType):
        return ""
    parts = ["__typename"]
    for name, field in b.fields.items():
        inner = _base(field.type)
        if any(isinstance(a.type, GraphQLNonNull) for a in field.args.values()):
            continue
        if name == "id" or (name == "errors" and isinstance(inner, GraphQLObjectType)):
            parts.append("errors { code }" if name == "errors" else "id")
        elif isinstance(inner, GraphQLObjectType) and depth < 2:
            sub = _selection(field.type, depth + 1)
            if "id" in sub.split() or "edges" in sub or "node" in sub:
                parts.append(f"{name} {sub}")
        elif name in ("edges", "node") and depth < 3:
            parts.append(f"{name} {_selection(field.type, depth + 1)}")
    return "{ " + " ".join(parts) + " }"


def _operation(
    kind: str, name: str, field: GraphQLField, victim: str, asset: str
) -> tuple[str, dict[str, Any]]:
    defs, args, variables = [], [], {}
    for arg, spec in field.args.items():
        if not (isinstance(spec.type, GraphQLNonNull) or _has_id(spec.type)):
            continue
        defs.append(f"${arg}: {spec.type}")
        args.append(f"{arg}: ${arg}")
        variables[arg] = _value(spec.type, arg, victim, asset)
    head = f"{kind} Probe({', '.join(defs)})" if defs else kind
    call = f"{name}({', '.join(args)})" if args else name
    return f"{head} {{ {call} {_selection(field.type)} }}", variables


def _codes(result: dict[str, Any], name: str) -> set[str]:
    found = {e.get("extensions", {}).get("code", "") for e in result.get("errors") or []}
    payload = (result.get("data") or {}).get(name)
    if isinstance(payload, dict):
        found |= {e["code"] for e in payload.get("errors") or []}
    return found


def _empty(value: Any) -> bool:
    """Null, an empty list or connection, or a payload holding only errors."""
    if value is None or value == []:
        return True
    if isinstance(value, dict):
        rest = {k: v for k, v in value.items() if k not in ("__typename", "errors", "pageInfo")}
        return all(_empty(v) for v in rest.values())
    return False


async def _schema(api: Api, token: str) -> GraphQLSchema:
    body = await api.gql(get_introspection_query(), token=token)
    return build_client_schema(body["data"])


async def _owned_by_a(api: Api, services: Services, asset: str) -> tuple[str, dict[str, str]]:
    token, _ = await trader(api, "500")
    ids: dict[str, str] = {}

    async def one(query: str, variables: dict[str, Any], path: list[str]) -> None:
        body = await api.gql(query, variables, token)
        node: Any = body["data"]
        for key in path:
            node = node[key]
        ids[path[0]] = node

    order = await placed(
        api, token, assetId=asset, orderType="BUY", orderSubType="LIMIT",
        quantity="1", price="10.00",
    )  # fmt: skip
    ids["order"] = order["id"]
    await one(
        "mutation($i: CreatePortfolioInput!) { createPortfolio(input: $i) { portfolio { id } } }",
        {"i": {"name": SECRET}}, ["createPortfolio", "portfolio", "id"],
    )  # fmt: skip
    await one(
        "mutation($i: CreateWatchlistInput!) { createWatchlist(input: $i) { watchlist { id } } }",
        {"i": {"name": SECRET, "assetIds": [asset]}}, ["createWatchlist", "watchlist", "id"],
    )  # fmt: skip
    await one(
        "mutation($i: CreateSupportTicketInput!) { createSupportTicket(input: $i) {"
        " ticket { id } } }",
        {"i": {"subject": SECRET, "body": SECRET, "orderId": ids["order"]}},
        ["createSupportTicket", "ticket", "id"],
    )  # fmt: skip
    await one(
        "mutation($i: RequestStatementInput!) { requestStatement(input: $i) { document { id } } }",
        {"i": {"periodStart": "2026-10-01T00:00:00Z", "periodEnd": "2026-11-01T00:00:00Z"}},
        ["requestStatement", "document", "id"],
    )  # fmt: skip
    await one(
        "mutation($i: CreatePriceAlertInput!) { createPriceAlert(input: $i) { alert { id } } }",
        {"i": {"assetId": asset, "condition": "PRICE_ABOVE", "threshold": "99"}},
        ["createPriceAlert", "alert", "id"],
    )  # fmt: skip
    await one(
        "mutation($i: CreateRecurringInvestmentInput!) { createRecurringInvestment(input: $i) {"
        " recurringInvestment { id } } }",
        {"i": {"assetId": asset, "notional": "5", "frequency": "MONTHLY"}},
        ["createRecurringInvestment", "recurringInvestment", "id"],
    )  # fmt: skip
    await one(
        "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } } }",
        {"i": {"url": "http://127.0.0.1:9/bola", "events": ["*"]}},
        ["createWebhook", "webhook", "id"],
    )  # fmt: skip
    await deposit(api, token, "5")  # a delivery to that webhook, written with the deposit
    log = await api.gql(
        "query($w: ID!) { webhookDeliveries(webhookId: $w) { edges { node { id } } } }",
        {"w": ids["createWebhook"]}, token,
    )  # fmt: skip
    ids["webhookDelivery"] = log["data"]["webhookDeliveries"]["edges"][0]["node"]["id"]
    notes = await api.gql("{ notifications(first: 1) { edges { node { id } } } }", token=token)
    ids["notification"] = notes["data"]["notifications"]["edges"][0]["node"]["id"]
    sessions = await api.gql("{ sessions { id } }", token=token)
    ids["session"] = sessions["data"]["sessions"][0]["id"]
    me = await api.gql("{ me { id } }", token=token)
    ids["user"] = me["data"]["me"]["id"]
    return token, ids


STATE = """query($order: ID!, $portfolio: ID!, $watchlist: ID!, $ticket: ID!, $document: ID!,
  $notification: ID!) {
  order(id: $order) { id status quantity price }
  portfolio(id: $portfolio) { id name assets { assetId quantity } }
  watchlist(id: $watchlist) { id name assetIds }
  supportTicket(id: $ticket) { id status subject priority assignee { id } rating }
  document(id: $document) { id status }
  notification(id: $notification) { id readAt }
  priceAlerts { id status }
  recurringInvestments { id status }
  sessions { id }
}"""


async def _state(api: Api, token: str, ids: dict[str, str]) -> dict[str, Any]:
    variables = {
        "order": ids["order"], "portfolio": ids["createPortfolio"],
        "watchlist": ids["createWatchlist"], "ticket": ids["createSupportTicket"],
        "document": ids["requestStatement"], "notification": ids["notification"],
    }  # fmt: skip
    body = await api.gql(STATE, variables, token)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    data["document"].pop("status")  # the worker may finish the statement meanwhile
    return data


async def test_a_second_customer_reaches_nothing_of_the_first_through_any_id(api: Api) -> None:
    assert api.app is not None
    services: Services = api.app.state.services
    asset = symbol("BOLA")
    await list_asset(services, asset, "20.00")
    a_token, ids = await _owned_by_a(api, services, asset)
    b_token, _ = await trader(api, "500")
    before = await _state(api, a_token, ids)

    schema = await _schema(api, b_token)
    roots = [("query", schema.query_type), ("mutation", schema.mutation_type),
             ("subscription", schema.subscription_type)]  # fmt: skip
    walked: list[str] = []
    leaks: list[str] = []
    for kind, root in roots:
        assert root is not None
        for name, field in root.fields.items():
            if name in PUBLIC or not any(_has_id(a.type) for a in field.args.values()):
                continue
            walked.append(name)
            for victim in ids.values():
                query, variables = _operation(kind, name, field, victim, asset)
                if kind == "subscription":
                    async with api.ws({"Authorization": f"Bearer {b_token}"}) as conn:
                        result = await api.ws_execute(conn, query, variables)
                    if isinstance(result.get("errors"), list) and "data" not in result:
                        result = {"errors": result["errors"]}
                else:
                    result = await api.gql(query, variables, b_token)
                data = (result.get("data") or {}).get(name)
                text = json.dumps(result.get("data"))
                carried = [v for v in ids.values() if v in text] + (
                    [SECRET] if SECRET in text else []
                )
                refused = bool(_codes(result, name) & REFUSALS) or _empty(data)
                if carried or not refused:
                    leaks.append(f"{name}({victim}) → {json.dumps(result)[:300]}")
    assert not leaks, "customer B reached customer A's objects:\n" + "\n".join(leaks)
    # The walk covered what it must (a guard against the walk itself silently shrinking).
    for must in ("order", "portfolio", "watchlist", "supportTicket", "document", "notification",
                 "cancelOrder", "replaceOrder", "revokeSession", "cancelPriceAlert",
                 "sendSupportMessage", "addPortfolioAsset", "supportMessages",
                 "webhookDeliveries", "replayWebhookDelivery", "updateWebhook",
                 "deleteWebhook"):  # fmt: skip
        assert must in walked, must

    # Nothing of A's changed, and A (the control) still reaches all of it.
    after = await _state(api, a_token, ids)
    assert after == before
    assert after["order"]["status"] == "PENDING"
    assert after["portfolio"]["name"] == SECRET
    assert [a["status"] for a in after["priceAlerts"]] == ["ACTIVE"]
    assert [r["status"] for r in after["recurringInvestments"]] == ["ACTIVE"]
    assert ids["session"] in {s["id"] for s in after["sessions"]}
    hooks = await api.gql("{ webhooks { id enabled } }", token=a_token)
    assert hooks["data"]["webhooks"] == [{"id": ids["createWebhook"], "enabled": True}]


async def test_a_batch_of_a_hundred_operations_is_refused_whole(api: Api) -> None:
    token, _ = await trader(api, "50")
    one = {"query": "mutation { markNotificationsRead(ids: []) { errors { code } } }"}
    response = await api.http.post(
        "/graphql", json=[one] * 100, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST", body


async def test_an_unauthenticated_websocket_gets_no_private_stream(api: Api) -> None:
    async with api.ws() as conn:
        for query in (
            "subscription { orderUpdates { event } }",
            "subscription { notificationAdded { id } }",
            'subscription { supportMessages(ticketId: "00000000-0000-0000-0000-000000000000")'
            " { id } }",
        ):
            result = await api.ws_execute(conn, query, op_id=query[15:30])
            errors = result["errors"]
            codes = {e.get("extensions", {}).get("code") for e in errors}
            assert codes & {"UNAUTHENTICATED", "NOT_FOUND"}, result
            assert not (result.get("data") or {}).get(query.split()[2].split("(")[0])
