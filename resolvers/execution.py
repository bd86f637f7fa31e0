"""The schema's graphql-core executor: two shortcuts the profiles of the big read paths proved.

- **Plain lists.** A list of objects whose selected fields are all plain data (no resolver,
  permission or field extension, no arguments, a scalar or enum type: a portfolio's
  holdings, a chart's candles) is completed in one loop per item (read the attribute, coerce
  the scalar) instead of graphql-core's per-field machinery (field lookup, resolve info,
  completion, several checks per field: ~80% of a 1,440-candle response's CPU). Anything else
  in the selection (a field with a resolver, ``@defer``/``@stream``, an object field), a list
  that is not a list or tuple, or any value the shortcut cannot complete (a null in a non-null
  field, a scalar refusing its value) takes graphql-core's path for the whole list, so errors
  and their paths are graphql-core's.
- **Shared subscription events.** An event marked with :func:`share` (one quote, yielded by
  every subscriber of its asset: ``resolvers/hub.py`` decodes a message once) is executed once
  per distinct selection: the first subscriber's result is kept on the event and given to the
  others whose operation is the same parsed document (``ParserCache`` gives one
  ``OperationDefinitionNode`` per query text). Only selections whose result cannot depend on
  who asks are shared: every selected field is plain data of the event (no resolver, so no
  context and no per-user rule), with no variables or directives below the root field (the
  variables of the root field's arguments, ``assetIds``, chose the events at subscribe time,
  per subscriber, and do not shape an event's result). The result's ``data`` is a
  :class:`SharedData`, which renders its JSON once (``bff.graphql_view`` sends those bytes).
  Authorisation stays per subscriber: each subscription runs its own resolver (its own checks)
  to be offered the event at all; sharing only skips re-rendering what it may already see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, TypeVar

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLLeafType,
    GraphQLOutputType,
    InlineFragmentNode,
    SelectionSetNode,
    Undefined,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList, collect_fields
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

T = TypeVar("T")

SHARED_ATTR = "_bourse_shared_results"
DEFINITION_BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF

# response key, attribute reader, leaf type, non-null; or (key, None, type name) for __typename
_Field = tuple[str, Callable[[Any], Any] | None, GraphQLLeafType | str, bool]

# Values a plain field holds that are never awaitable (skips the check for each of them).
_PLAIN_VALUES = frozenset({str, int, float, bool, Decimal, datetime, date})


@dataclass(frozen=True, slots=True)
class _Plan:
    nullable_items: bool
    fields: tuple[_Field, ...]


def share(event: T) -> T:
    """Mark an event yielded to many subscribers as shareable (see the module docstring)."""
    setattr(event, SHARED_ATTR, {})
    return event


class SharedData(dict[str, Any]):
    """A subscription event's ``data``, shared by its subscribers: rendered to JSON once."""

    __slots__ = ("_payload",)

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self._payload: str | None = None

    def next_message(self, operation_id: str, encode: Callable[[object], str | bytes]) -> str:
        """The graphql-transport-ws ``next`` message for ``operation_id``, as ``encode``
        (compact JSON) would write it, the payload encoded once for every subscriber."""
        if self._payload is None:
            self._payload = _text(encode({"data": dict(self)}))
        return f'{{"id":{_text(encode(operation_id))},"type":"next","payload":{self._payload}}}'


def _reader(definition: object) -> Callable[[Any], Any] | None:
    """What Strawberry's resolver of a field without one does (``StrawberryField.get_result``:
    ``default_resolver(source, python_name)``), without the calls around it."""
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return None  # a resolver, permission classes or field extensions: graphql-core's path
    name = definition.python_name
    default = definition.default_resolver
    if default is getattr:
        return attrgetter(name)
    return lambda source: default(source, name)


def _text(encoded: str | bytes) -> str:
    return encoded.decode() if isinstance(encoded, bytes) else encoded


class BourseExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[int, int], tuple[object, _Plan | None]] = {}
        self._shareable: bool | None = None

    # ---- plain lists ----

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Any,
        items: Any,
        position_context: Any,
    ) -> Any:
        if isinstance(items, list | tuple):
            plan = self._plan(item_type, field_details_list)
            if plan is not None:
                done = self._complete_plain(plan, items)
                if done is not None:
                    return done
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def _plan(self, item_type: GraphQLOutputType, fdl: FieldDetailsList) -> _Plan | None:
        # Memoized like graphql-core's collect_subfields: on the identity of the field group,
        # kept alive with the plan so that its id cannot be reused meanwhile.
        key = (id(item_type), id(fdl))
        cached = self._plans.get(key)
        if cached is None:
            cached = self._plans[key] = ((item_type, fdl), self._make_plan(item_type, fdl))
        return cached[1]

    def _make_plan(self, item_type: GraphQLOutputType, fdl: FieldDetailsList) -> _Plan | None:
        nullable = not is_non_null_type(item_type)
        obj_type = get_nullable_type(item_type)
        if not is_object_type(obj_type) or obj_type.is_type_of is not None:
            return None
        if any(details.node.directives for details in fdl):  # @stream on the list itself
            return None
        grouped, defer_usages, _ = self.collect_subfields(obj_type, fdl)
        if defer_usages:
            return None
        fields: list[_Field] = []
        middleware = self.middleware_manager
        for response_key, sub in grouped.items():
            node = sub[0].node
            name = node.name.value
            if name == "__typename":
                fields.append((response_key, None, obj_type.name, True))
                continue
            field_def = self.schema.get_field(obj_type, name)
            if field_def is None or field_def.args or node.arguments:
                return None
            resolve = field_def.resolve
            if resolve is None or not getattr(resolve, "_is_default", False):
                return None  # a resolver of its own: graphql-core calls it
            if middleware is not None and middleware.get_field_resolver(resolve) is not resolve:
                return None
            reader = _reader(field_def.extensions.get(DEFINITION_BACKREF))
            if reader is None:
                return None
            non_null = is_non_null_type(field_def.type)
            leaf = get_nullable_type(field_def.type)
            if not is_leaf_type(leaf):
                return None
            fields.append((response_key, reader, leaf, non_null))
        return _Plan(nullable, tuple(fields))

    def _complete_plain(self, plan: _Plan, items: list[Any] | tuple[Any, ...]) -> list[Any] | None:
        """Every item completed, or None: then graphql-core completes the list instead."""
        is_awaitable = self.is_awaitable
        out: list[Any] = []
        try:
            for item in items:
                if item is None:
                    if not plan.nullable_items:
                        return None
                    out.append(None)
                    continue
                if is_awaitable(item):
                    return None
                row: dict[str, Any] = {}
                for key, read, leaf, non_null in plan.fields:
                    if read is None:
                        row[key] = leaf
                        continue
                    value = read(item)
                    if value is None:
                        if non_null:
                            return None
                        row[key] = None
                        continue
                    if type(value) not in _PLAIN_VALUES and is_awaitable(value):
                        return None
                    coerced = leaf.coerce_output_value(value)  # type: ignore[union-attr]
                    if coerced is None or coerced is Undefined:
                        return None
                    row[key] = coerced
                out.append(row)
        except Exception:
            return None
        return out

    # ---- shared subscription events ----

    def build_per_event_executor(self, payload: Any) -> Any:
        if self._shareable is None:
            self._shareable = self._selection_is_shareable()
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> Any:
        results: dict[int, tuple[object, ExecutionResult]] | None = (
            getattr(self.root_value, SHARED_ATTR, None) if self._shareable else None
        )
        if results is None:
            return super().execute_operation(serially)
        hit = results.get(id(self.operation))
        if hit is not None:
            return hit[1]
        result = super().execute_operation(serially)
        if isinstance(result, ExecutionResult) and not result.errors and result.data is not None:
            result = ExecutionResult(data=SharedData(result.data))
            results[id(self.operation)] = (self.operation, result)
        return result

    def _selection_is_shareable(self) -> bool:
        """One root field whose selection is plain data of the event, with no variable or
        directive that could make one subscriber's result differ from another's."""
        root_type = self.schema.subscription_type
        if root_type is None:
            return False
        try:
            grouped, defer_usages, _ = collect_fields(
                self.schema,
                self.fragments,
                self.variable_values,
                root_type,
                self.operation,
                self.hide_suggestions,
            )
        except Exception:
            return False
        if defer_usages or len(grouped) != 1:
            return False
        (fdl,) = grouped.values()
        node = fdl[0].node
        field_def = self.schema.get_field(root_type, node.name.value)
        if field_def is None or node.directives or node.selection_set is None:
            return False
        if not self._static(node.selection_set, set()):
            return False
        return self._make_plan(field_def.type, fdl) is not None

    def _static(self, selections: SelectionSetNode, seen: set[str]) -> bool:
        for sel in selections.selections:
            if sel.directives:
                return False
            if isinstance(sel, FieldNode):
                if sel.arguments or sel.selection_set is not None:
                    return False
            elif isinstance(sel, InlineFragmentNode):
                if not self._static(sel.selection_set, seen):
                    return False
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                fragment = self.fragment_definitions.get(name)
                if fragment is None or fragment.directives or name in seen:
                    return False
                if not self._static(fragment.selection_set, seen | {name}):
                    return False
            else:
                return False
        return True
