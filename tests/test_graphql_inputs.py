"""Input objects built by their plan (resolvers/inputs.py) are the values Strawberry's own
conversion builds, for every input type of the schema, with every field sent and with only
the required ones. Real mutations with nested inputs (a bracket's `takeProfit` and `stopLoss`)
run through the plans in the API tests (tests/orders/)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
)
from graphql.utilities import coerce_input_value
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryObjectDefinition

from resolvers.inputs import InputPlan
from resolvers.schema import schema

SCALARS: dict[str, object] = {
    "String": "text",
    "ID": "an-id",
    "Boolean": True,
    "Int": 7,
    "Float": 2.5,
    "AmountInput": "12.50",
    "Date": "2026-12-03",
    "DateTime": "2026-12-03T14:30:00+00:00",
}


def _sample(type_: GraphQLInputType, *, full: bool) -> object:
    """An input value (as JSON would send it) for `type_`: all fields, or required ones."""
    if isinstance(type_, GraphQLNonNull):
        return _sample(type_.of_type, full=full)
    if isinstance(type_, GraphQLList):
        return [_sample(type_.of_type, full=full), _sample(type_.of_type, full=full)]
    if isinstance(type_, GraphQLEnumType):
        return list(type_.values)[-1]
    if isinstance(type_, GraphQLScalarType):
        return SCALARS[type_.name]
    assert isinstance(type_, GraphQLInputObjectType)
    return {
        name: _sample(field.type, full=full)
        for name, field in type_.fields.items()
        if full or (isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined)
    }


def _inputs() -> list[tuple[StrawberryObjectDefinition, GraphQLInputObjectType]]:
    found = []
    for concrete in schema.schema_converter.type_map.values():
        definition = concrete.definition
        if isinstance(definition, StrawberryObjectDefinition) and definition.is_input:
            assert isinstance(concrete.implementation, GraphQLInputObjectType)
            found.append((definition, concrete.implementation))
    return sorted(found, key=lambda pair: pair[0].name)


def test_every_input_type_has_a_plan() -> None:
    inputs = _inputs()
    assert len(inputs) >= 30
    assert all(isinstance(d.from_input, InputPlan) for d, _ in inputs)


def _strawberrys(definition: StrawberryObjectDefinition, value: object) -> Any:
    """Strawberry's field-by-field conversion, every plan switched off while it runs."""
    plans = {d: d.from_input for d, _ in _inputs()}
    try:
        for d in plans:
            d.from_input = None
        return convert_argument(value, definition.origin, schema.schema_converter.scalar_registry,
                                schema.config)  # fmt: skip
    finally:
        for d, plan in plans.items():
            d.from_input = plan


@pytest.mark.parametrize("full", [True, False], ids=["every-field", "required-only"])
@pytest.mark.parametrize("pair", _inputs(), ids=lambda pair: pair[0].name)
def test_a_plan_builds_what_strawberry_builds(
    pair: tuple[StrawberryObjectDefinition, GraphQLInputObjectType], full: bool
) -> None:
    definition, graphql_type = pair
    value = coerce_input_value(_sample(graphql_type, full=full), graphql_type)
    assert isinstance(value, dict)
    planned = convert_argument(
        value, definition.origin, schema.schema_converter.scalar_registry, schema.config
    )
    expected = _strawberrys(definition, value)
    assert type(planned) is type(expected) is definition.origin
    assert vars(planned) == vars(expected)
    for name, item in vars(planned).items():  # nested inputs are built, not left as dicts
        assert type(item) is type(vars(expected)[name])
