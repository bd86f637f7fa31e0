"""The names API.md section 4 promises exist in the exported SDL, with the promised shapes."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType, build_schema

SDL = Path(__file__).resolve().parents[2] / "graphql" / "schema.graphql"


def test_funds_contract_names() -> None:
    sdl = build_schema(SDL.read_text())
    assert sdl.query_type is not None
    assert sdl.mutation_type is not None
    assert {"account", "transactions"} <= set(sdl.query_type.fields)
    assert set(sdl.query_type.fields["transactions"].args) == {
        "type", "startDate", "endDate", "first", "after",
    }  # fmt: skip
    for name, method in (("deposit", "paymentMethod"), ("withdraw", "withdrawalMethod")):
        field = sdl.mutation_type.fields[name]
        assert str(field.type) == "FundsPayload"  # nullable, as every root mutation
        input_type = sdl.get_type("DepositInput" if name == "deposit" else "WithdrawInput")
        assert isinstance(input_type, GraphQLInputObjectType)
        # The contract's fields, all there; a withdrawal may add its fresh proof (issue 17).
        proof = {"currentPassword", "otp"} if name == "withdraw" else set()
        assert set(input_type.fields) == {"amount", "currency", method, "idempotencyKey", *proof}
        for extra in proof:
            assert not str(input_type.fields[extra].type).endswith("!")  # optional
    shapes = {
        "FundsPayload": {"transaction", "errors"},
        "Transaction": {"id", "type", "amount", "currency", "status", "paymentMethod",
                        "withdrawalMethod", "createdAt"},
        "TransactionConnection": {"edges", "pageInfo"},
        "TransactionEdge": {"cursor", "node"},
        "PageInfo": {"hasNextPage", "endCursor"},
        "Account": {"cash", "buyingPower"},
        "CashBalance": {"currency", "total", "available", "held"},
    }  # fmt: skip
    for type_name, fields in shapes.items():
        t = sdl.get_type(type_name)
        assert isinstance(t, GraphQLObjectType), type_name
        assert set(t.fields) >= fields, type_name
    # DIVIDEND: API.md section 9; CASH_IN_LIEU: a split's fractional remainder (issue 16).
    enums = {"TransactionType": {"DEPOSIT", "WITHDRAWAL", "DIVIDEND", "CASH_IN_LIEU"},
             "TransactionStatus": {"PENDING", "COMPLETED", "FAILED"}}  # fmt: skip
    for enum_name, values in enums.items():
        e = sdl.get_type(enum_name)
        assert isinstance(e, GraphQLEnumType)
        assert set(e.values) == values
