"""The names API.md section 9 promises exist in the exported SDL, with the promised shapes."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLEnumType, GraphQLObjectType, build_schema, get_named_type

ROOT = Path(__file__).resolve().parents[2]
SDL = build_schema((ROOT / "graphql" / "schema.graphql").read_text())


def fields_of(name: str) -> set[str]:
    t = SDL.get_type(name)
    assert isinstance(t, GraphQLObjectType), name
    return set(t.fields)


def test_section_9_names() -> None:
    assert SDL.query_type is not None
    assert SDL.mutation_type is not None
    query, mutation = SDL.query_type.fields, SDL.mutation_type.fields
    assert set(query["documents"].args) == {"kind", "year", "first", "after"}
    assert set(query["performanceAnalytics"].args) == {
        "portfolioId", "startDate", "endDate", "benchmark",
    }  # fmt: skip
    assert set(query["corporateActions"].args) == {"assetId"}
    for name in ("requestStatement", "recordCashDividend", "recordStockSplit"):
        assert set(mutation[name].args) == {"input"}, name
    assert {
        "id", "kind", "periodStart", "periodEnd", "format", "status", "downloadUrl", "createdAt",
        "corrected",
    } <= fields_of("Document")  # fmt: skip
    assert {"edges", "pageInfo"} <= fields_of("DocumentConnection")
    assert {
        "timeWeightedReturn", "moneyWeightedReturn", "benchmarkReturn", "allocation",
        "contributions",
    } <= fields_of(str(get_named_type(query["performanceAnalytics"].type)))  # fmt: skip
    assert {"corporateAction", "errors"} <= fields_of("CorporateActionPayload")
    enums = {
        "DocumentKind": {"MONTHLY_STATEMENT", "TRADE_CONFIRMATION", "TAX_1099", "DATA_EXPORT"},
        "DocumentFormat": {"PDF", "CSV", "ZIP"},
        "DocumentStatus": {"PENDING", "READY", "FAILED"},
    }
    for name, values in enums.items():
        t = SDL.get_type(name)
        assert isinstance(t, GraphQLEnumType), name
        assert set(t.values) == values, name
    tx = SDL.get_type("TransactionType")
    assert isinstance(tx, GraphQLEnumType)
    assert "DIVIDEND" in tx.values
