"""In production the schema is not handed to strangers: introspection is for staff, and
validation errors do not suggest field names.

Validation results are cached per document for everyone (`ValidationCache`), so who may
introspect cannot be a validation rule: it is checked at execution, from the caller's principal.
`__schema` and `__type` exist only on the query root, so the check looks at the operation's root
selections (through fragments and inline fragments) and nothing deeper. `__typename` is not
introspection of the schema and stays open.

Suggestions ("Did you mean 'password'?") let an anonymous caller map the schema one typo at a
time; in production they are cut from every validation message (the console's GraphiQL works
from introspection, which staff still have).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

from models.users import STAFF_ROLES
from resolvers.context import Context

SCHEMA_FIELDS = frozenset({"__schema", "__type"})
SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def introspects(document: DocumentNode, operation_name: str | None) -> bool:
    """Whether the operation that runs selects `__schema` or `__type` at its root."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    seen: set[str] = set()

    def root(selection_set: SelectionSetNode) -> bool:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value in SCHEMA_FIELDS:
                    return True
            elif isinstance(selection, InlineFragmentNode):
                if root(selection.selection_set):
                    return True
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    if root(fragments[name].selection_set):
                        return True
        return False

    return any(
        root(d.selection_set)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
        and (operation_name is None or (d.name is not None and d.name.value == operation_name))
    )


class ProductionSchemaPrivacy(SchemaExtension):
    """Added to the schema's extensions in production only."""

    def on_validate(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            error.message = SUGGESTION.sub("", error.message)

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and introspects(document, context.operation_name):
            request: Context = context.context
            principal = await request.principal()
            if principal is None or principal.role not in STAFF_ROLES:
                context.result = ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            "Introspection is for staff.", extensions={"code": "FORBIDDEN"}
                        )
                    ],
                )
        yield
