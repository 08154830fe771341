"""Query limits per role, and persisted-only keys, checked before a query runs.

Limits (in the spirit of GraphQL Armor and Apollo Router), each per role:
- ``tokens``: lexical tokens in the document (checked before parsing);
- ``depth``: the deepest nesting of selections, fragments expanded;
- ``aliases``: aliased fields;
- ``root_fields``: fields selected at the operation's top level;
- ``cost``: every field costs 1, and the fields below one with a ``first`` argument cost that
  many times over (``first`` as written or as the variable holds it; a list field without
  ``first`` counts once: those lists are short by construction, or capped where declared).
A persisted-only key sending an ad-hoc query, and an unknown persisted hash, are refused here
too, before anything is parsed.
Validation results are cached per document for every role alike, so these checks run
after it, per request; their measures are cached per document text.
"""

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    TokenKind,
    VariableNode,
    parse,
)
from graphql.language.lexer import Lexer
from strawberry.extensions import SchemaExtension

from profilegate.domain.keys import Principal, Role

PERSISTED = "profilegate.persisted"  # scope key: the hash of the persisted operation run
PERSISTED_MISSING = "profilegate.persisted_missing"  # scope key: a hash no operation has
PERSISTED_QUERY_REQUIRED = "PERSISTED_QUERY_REQUIRED"  # an ad-hoc query from a persisted-only key
PLACEHOLDER = "{ __typename }"  # what is parsed in place of a refused request (it never runs)
CACHED_DOCUMENT_CHARS = 16_384  # longer documents are measured every time, never kept
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,99}$")


@dataclass(frozen=True)
class QueryLimits:
    depth: int
    aliases: int
    root_fields: int
    tokens: int
    cost: int


DEFAULT_LIMITS: Mapping[Role, QueryLimits] = {
    Role.STOREFRONT: QueryLimits(depth=6, aliases=5, root_fields=3, tokens=1_000, cost=200),
    Role.INGEST: QueryLimits(depth=6, aliases=5, root_fields=3, tokens=1_000, cost=200),
    Role.PARTNER: QueryLimits(depth=10, aliases=20, root_fields=10, tokens=2_000, cost=5_000),
    Role.ADMIN: QueryLimits(depth=15, aliases=50, root_fields=30, tokens=10_000, cost=100_000),
}


@dataclass(frozen=True)
class Measures:
    depth: int
    aliases: int
    root_fields: int


def placeholder(operation_name: str | None) -> str:
    """A document to parse in place of a refused one, with the operation the request names."""
    if operation_name is not None and _NAME.fullmatch(operation_name):
        return f"query {operation_name} {{ __typename }}"
    return PLACEHOLDER


def limits_for(role: Role, overrides: Mapping[str, Mapping[str, int]]) -> QueryLimits:
    base = DEFAULT_LIMITS[role]
    return QueryLimits(**{**base.__dict__, **overrides.get(role.value, {})})


def refusal(what: str, value: int, limit: int, code: str, role: Role) -> GraphQLError:
    message = f"the query's {what} is {value:,}, over the limit of {limit:,} for the {role.value} role"
    return GraphQLError(message, extensions={"code": code, "limit": limit, "value": value})


def too_many_tokens(limit: int, role: Role) -> GraphQLError:
    """The lexer stops one token past the limit: the message says "more than", not a count."""
    message = (
        f"the query has more than {limit:,} tokens, over the limit of {limit:,} for the {role.value} role"
    )
    return GraphQLError(message, extensions={"code": "TOO_MANY_TOKENS", "limit": limit})


def count_tokens(query: str, stop_after: int) -> int:
    """Lexical tokens in ``query``, counting no further than ``stop_after`` + 1: remembered per
    document text up to ``CACHED_DOCUMENT_CHARS`` (a storefront sends the same few documents all
    day, and lexing one costs more than the rest of the checks together)."""
    if len(query) <= CACHED_DOCUMENT_CHARS:
        return _cached_token_count(query, stop_after)
    return _token_count(query, stop_after)


@functools.lru_cache(maxsize=2048)
def _cached_token_count(query: str, stop_after: int) -> int:
    return _token_count(query, stop_after)


def _token_count(query: str, stop_after: int) -> int:
    lexer, count = Lexer(Source(query)), 0
    while count <= stop_after and lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


@functools.lru_cache(maxsize=2048)
def measure(query: str, operation_name: str | None) -> Measures:
    """Depth, aliases and root fields of the operation to run (the document is valid)."""
    operation, fragments = _operation_and_fragments(query, operation_name)
    roots = list(_fields(operation.selection_set, fragments))
    return Measures(
        depth=_depth(operation.selection_set, fragments),
        aliases=_aliases(operation.selection_set, fragments),
        root_fields=len(roots),
    )


def cost(query: str, operation_name: str | None, variables: Mapping[str, Any]) -> int:
    operation, fragments = _operation_and_fragments(query, operation_name)
    return _cost(operation.selection_set, fragments, variables)


@functools.lru_cache(maxsize=2048)
def _operation_and_fragments(
    query: str, operation_name: str | None
) -> tuple[OperationDefinitionNode, dict[str, FragmentDefinitionNode]]:
    """The operation to run and the fragments by name: parsed once per document text."""
    document = parse(query)
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return _operation(document, operation_name), fragments


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    named = [o for o in operations if name is not None and o.name is not None and o.name.value == name]
    return named[0] if named else operations[0]


def _fields(
    selections: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    """The fields of a selection set, fragments expanded."""
    for selection in selections.selections if selections else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
            yield from _fields(fragments[selection.name.value].selection_set, fragments)


def _depth(selections: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]) -> int:
    children = [field.selection_set for field in _fields(selections, fragments)]
    return max((1 + _depth(child, fragments) for child in children), default=0)


def _aliases(selections: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]) -> int:
    return sum(
        (field.alias is not None) + _aliases(field.selection_set, fragments)
        for field in _fields(selections, fragments)
    )


def _cost(
    selections: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    return sum(
        1 + _multiplier(field, variables) * _cost(field.selection_set, fragments, variables)
        for field in _fields(selections, fragments)
    )


def _multiplier(field: FieldNode, variables: Mapping[str, Any]) -> int:
    for argument in field.arguments or ():
        if argument.name.value != "first":
            continue
        if isinstance(argument.value, IntValueNode):
            return max(1, int(argument.value.value))
        if isinstance(argument.value, VariableNode):
            value = variables.get(argument.value.name.value)
            return max(1, value) if isinstance(value, int) else 1
    return 1


REFUSED = "profilegate_refused"  # the execution context's attribute holding a refusal


class CheckBeforeParsing(SchemaExtension):
    """Refuses an ad-hoc query from a key restricted to persisted operations, a persisted hash
    nobody registered, and a document over the caller's token limit, before it is parsed
    (put it before the parser cache). The refused document is not parsed: a placeholder is."""

    def __init__(self, overrides: Mapping[str, Mapping[str, int]] | None = None) -> None:
        self.overrides = overrides or {}

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        caller: Principal | None = getattr(execution.context, "caller", None)
        if caller is not None:
            query = execution.query or ""
            refused = _persisted_refusal(execution.context, caller) or self._tokens(caller, query)
            if refused is not None:
                setattr(execution, REFUSED, refused)
                execution.query = placeholder(execution.operation_name)
        yield

    def _tokens(self, caller: Principal, query: str) -> GraphQLError | None:
        limit = limits_for(caller.role, self.overrides).tokens
        return too_many_tokens(limit, caller.role) if count_tokens(query, limit) > limit else None


class CheckBeforeExecuting(SchemaExtension):
    """Refuses a valid query over its caller's depth, alias, root-field or cost limit, and
    reports what ``CheckBeforeParsing`` refused (put it after the validation cache, which sets
    the validation errors that a refusal replaces)."""

    def __init__(self, overrides: Mapping[str, Mapping[str, int]] | None = None) -> None:
        self.overrides = overrides or {}

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        caller: Principal | None = getattr(execution.context, "caller", None)
        refused: GraphQLError | None = getattr(execution, REFUSED, None)
        if refused is None and not execution.pre_execution_errors and caller is not None:
            refused = self._shape(caller, execution.query or "", execution.operation_name)
        if refused is not None:
            execution.pre_execution_errors = [refused]
        yield

    def _shape(self, caller: Principal, query: str, operation: str | None) -> GraphQLError | None:
        limits, measures = limits_for(caller.role, self.overrides), measure(query, operation)
        checks = (
            ("depth", measures.depth, limits.depth, "QUERY_TOO_DEEP"),
            ("alias count", measures.aliases, limits.aliases, "TOO_MANY_ALIASES"),
            ("root field count", measures.root_fields, limits.root_fields, "TOO_MANY_ROOT_FIELDS"),
        )
        for what, value, limit, code in checks:
            if value > limit:
                return refusal(what, value, limit, code, caller.role)
        spent = cost(query, operation, self.execution_context.variables or {})
        if spent > limits.cost:
            return refusal("cost", spent, limits.cost, "QUERY_TOO_COSTLY", caller.role)
        return None


def _persisted_refusal(context: object, caller: Principal) -> GraphQLError | None:
    scope: Mapping[str, Any] = getattr(context, "scope", {})
    if PERSISTED_MISSING in scope:
        message = f"no persisted operation has the hash {scope[PERSISTED_MISSING]}"
        return GraphQLError(message, extensions={"code": "PERSISTED_QUERY_NOT_FOUND"})
    if caller.persisted_only and PERSISTED not in scope:
        message = "this key may run persisted operations only: send their hash, not a query"
        return GraphQLError(message, extensions={"code": PERSISTED_QUERY_REQUIRED})
    return None
