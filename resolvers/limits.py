"""Depth, alias and fragment-spread limits, computed in one pass linear in the document.

Strawberry's `QueryDepthLimiter` and `MaxAliasesLimiter` walk every fragment again at each of
its spreads, so 20 fragments each spreading the next twice cost 2^20 walks: a 766-byte
anonymous document took seconds to validate and stalled the event loop (issue 17). Here each
fragment's cost (depth, aliases, expanded spreads) is computed once and reused at every spread,
so validation costs one visit per node of the document whatever its fragments do; the expanded
spread count is then capped, so a document cannot ask later stages to unfold an exponential tree.

Semantics match Strawberry's limiters (same messages): a field with a selection set adds one
level, introspection fields (`__schema`, `__type` …) add none; every aliased field counts once
per place it is expanded into. Introspection has its own, larger cap on the depth counted with
every field (`levels`): GraphiQL's introspection query is 14 levels deep, and a 40-level
`ofType` chain is refused like any over-deep query. Fragment cycles count nothing here
(`NoFragmentCycles` reports them).

Cost: every field costs 1, and a field taking `first` multiplies the cost of what it selects by
its page size: the literal, or the cap (100) when it comes from a variable (validation is cached
per document, so variables are not known here; the cap is what a variable may ask for). Cost is
compositional, so a fragment's cost is memoised like the rest. `assets(first: 100)` with ten
fields costs about 1,100; thirty aliased copies of it are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

from models.pagination import MAX_PAGE


@dataclass(frozen=True, slots=True)
class Cost:
    depth: int = 0
    aliases: int = 0
    spreads: int = 0  # fragment spreads once every fragment is expanded in place
    levels: int = 0  # the depth with introspection fields counted too
    cost: int = 0  # fields, each list's selection weighted by its `first`

    def __or__(self, other: Cost) -> Cost:
        """Two selections side by side: the deeper depths, the sums of the counts."""
        return Cost(
            max(self.depth, other.depth),
            self.aliases + other.aliases,
            self.spreads + other.spreads,
            max(self.levels, other.levels),
            self.cost + other.cost,
        )


ZERO = Cost()


def multiplier(field: FieldNode) -> int:
    """What a field's selection is multiplied by: its `first`, else 1 (a single object)."""
    for argument in field.arguments or ():
        if argument.name.value == "first":
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(1, min(int(value.value), MAX_PAGE))
            return MAX_PAGE  # a variable (or null: the default page, at most the cap)
    return 1


class DocumentCosts:
    """The cost of selection sets, each fragment's computed once (memoised by name)."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, Cost] = {}
        self.in_progress: set[str] = set()

    def selection_set(self, node: SelectionSetNode | None) -> Cost:
        total = ZERO
        for selection in node.selections if node else ():
            total = total | self.selection(selection)
        return total

    def selection(self, node: object) -> Cost:
        if isinstance(node, FieldNode):
            inner = self.selection_set(node.selection_set)
            introspection = node.name.value.startswith("__")
            nested = node.selection_set is not None and not introspection
            return Cost(
                inner.depth + 1 if nested else 0,
                inner.aliases + (1 if node.alias else 0),
                inner.spreads,
                inner.levels + 1 if node.selection_set is not None else 0,
                1 + multiplier(node) * inner.cost,
            )
        if isinstance(node, InlineFragmentNode):
            return self.selection_set(node.selection_set)
        if isinstance(node, FragmentSpreadNode):
            cost = self.fragment(node.name.value)
            return Cost(cost.depth, cost.aliases, cost.spreads + 1, cost.levels, cost.cost)
        return ZERO

    def fragment(self, name: str) -> Cost:
        if name in self.memo:
            return self.memo[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.in_progress:
            return ZERO  # unknown or cyclic: other rules report it
        self.in_progress.add(name)
        cost = self.selection_set(definition.selection_set)
        self.in_progress.discard(name)
        self.memo[name] = cost
        return cost


def limits_rule(
    max_depth: int,
    max_aliases: int,
    max_spreads: int,
    max_introspection_depth: int,
    max_cost: int,
) -> type[ASTValidationRule]:
    """One rule class (built once, so the validation cache keys stay stable)."""

    class DocumentLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            definitions = document.definitions
            fragments = {
                d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)
            }
            costs = DocumentCosts(fragments)
            total = ZERO
            try:
                for operation in definitions:
                    if not isinstance(operation, OperationDefinitionNode):
                        continue
                    cost = costs.selection_set(operation.selection_set)
                    total = total | cost
                    name = operation.name.value if operation.name else "anonymous"
                    if cost.depth > max_depth:
                        context.report_error(
                            GraphQLError(
                                f"'{name}' exceeds maximum operation depth of {max_depth}",
                                [operation],
                            )
                        )
                    elif cost.levels > max_introspection_depth:
                        context.report_error(
                            GraphQLError(
                                f"'{name}' exceeds maximum introspection depth of "
                                f"{max_introspection_depth}",
                                [operation],
                            )
                        )
            except RecursionError:
                context.report_error(GraphQLError("The document is nested too deeply."))
                return
            if total.aliases > max_aliases:
                context.report_error(
                    GraphQLError(f"{total.aliases} aliases found. Allowed: {max_aliases}")
                )
            if total.spreads > max_spreads:
                context.report_error(
                    GraphQLError(f"Fragment spreads expand to more than {max_spreads}.")
                )
            if total.cost > max_cost:
                context.report_error(
                    GraphQLError(
                        f"The query costs {total.cost}, more than {max_cost}: ask for fewer "
                        "items per page or fewer fields."
                    )
                )

    return DocumentLimits
