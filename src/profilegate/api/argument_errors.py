"""Argument values that do not fit their type, told in the product's words with their path.

GraphQL refuses such a value before anything runs, in the words of the scalar's parser
(``Value cannot represent a DateTime: "31.12.2027". Expected 4 digits, got '31.1'``) and
without saying which argument held it. ``DescribeArgumentErrors`` replaces each of those
errors by one naming the path from the argument as the client wrote it (``events[0].at``;
for a variable, the argument it is passed to, or ``$name``) and the form expected, with
``extensions {code: "BAD_USER_INPUT", field}``; ``locations`` stay as they were.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    ListValueNode,
    Node,
    NullValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    TypeInfo,
    TypeInfoVisitor,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    print_ast,
    type_from_ast,
    visit,
)
from graphql.pyutils import Undefined
from strawberry.extensions import SchemaExtension
from strawberry.schema_directives import OneOf

BAD_USER_INPUT = "BAD_USER_INPUT"
MAX_SHOWN = 40  # characters of a refused value repeated in the message
INT_RANGE = "between -2147483648 and 2147483647"
# What a value of each scalar looks like, as a message ends: "... is not <noun>; expected <form>".
SCALARS: Mapping[str, tuple[str, str]] = {
    "DateTime": ("a date and time", "ISO 8601 such as 2027-12-31T23:59:59Z"),
    "Date": ("a date", "ISO 8601 such as 2027-12-31"),
    "Int": ("a whole number", f"a whole number {INT_RANGE}"),
    "Float": ("a number", "a number such as 12.5"),
    "String": ("a text", 'a text in quotes, e.g. "abc"'),
    "ID": ("an id", 'an id in quotes, e.g. "7f3c2a91"'),
    "Boolean": ("true or false", "true or false"),
    "JSON": ("JSON", "a JSON value"),
}


@dataclass(frozen=True)
class Place:
    path: str
    type: GraphQLInputType


class DescribeArgumentErrors(SchemaExtension):
    """Rewrites request errors about argument and variable values (put it after the error
    masking, so that it runs before it on the way out)."""

    def on_operation(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        result, document = execution.result, execution.graphql_document
        if result is None or not result.errors or document is None:
            return
        arguments = argument_places(execution.schema._schema, document)
        variables = execution.variables or {}
        # A scalar's own parser reports a literal it refuses without a location: those errors
        # take the document's refused literals in order.
        refused = iter([*_refused_literals(arguments), *_refused_variables(arguments, variables)])
        result.errors = [described(error, arguments, variables, refused) for error in result.errors]


def described(
    error: GraphQLError,
    arguments: "Arguments",
    variables: Mapping[str, Any],
    refused: Iterator[tuple[Node, tuple[str, str]]],
) -> GraphQLError:
    if error.path is not None:
        return error
    nodes: list[Node] | None = list(error.nodes) if error.nodes else None
    if nodes is None:
        argument, found = next(refused, (None, None))
        nodes = None if argument is None else [argument]
    elif len(nodes) == 1:
        found = _problem(nodes[0], arguments.places, variables)
    else:
        found = None
    if found is None:
        return error
    path, reason = found
    return GraphQLError(f"{path}: {reason}", nodes=nodes, extensions={"code": BAD_USER_INPUT, "field": path})


def _refused_literals(arguments: "Arguments") -> Iterator[tuple[Node, tuple[str, str]]]:
    for argument, type_ in arguments.roots:
        found = problem_in_literal(argument.value, type_, argument.name.value)
        if found is not None:
            yield argument, found


def _refused_variables(
    arguments: "Arguments", variables: Mapping[str, Any]
) -> Iterator[tuple[Node, tuple[str, str]]]:
    for definition in arguments.definitions:
        found = _problem(definition, arguments.places, variables)
        if found is not None:
            yield definition, found


def _problem(node: Node, places: Mapping[int, Place], variables: Mapping[str, Any]) -> tuple[str, str] | None:
    place = places.get(id(node))
    if place is None:
        return None
    if isinstance(node, VariableDefinitionNode):
        name = node.variable.name.value
        if name not in variables and isinstance(place.type, GraphQLNonNull) and node.default_value is None:
            return place.path, f"is required; the variable ${name} was not given"
        return problem_in_value(variables.get(name), place.type, place.path)
    if isinstance(node, ObjectFieldNode):
        return place.path, f"is not a field of {_named(place.type).name}; {_fields_of(place.type)}"
    return problem_in_literal(node, place.type, place.path) if isinstance(node, ValueNode) else None


def argument_places(schema: GraphQLSchema, document: DocumentNode) -> "Arguments":
    """Every argument value, object field and variable definition of the document, by node id,
    with its path from the argument and its type."""
    arguments = Arguments(TypeInfo(schema))
    visit(document, TypeInfoVisitor(arguments.type_info, arguments))
    for definition in _variable_definitions(document):
        wanted = type_from_ast(schema, definition.type)
        name = definition.variable.name.value
        used = arguments.uses.get(name, [])
        if wanted is not None and used:  # an unused variable's error is about that, not its value
            path = used[0] if len(used) == 1 else f"${name}"
            arguments.definitions.append(definition)
            arguments.places[id(definition)] = Place(path, wanted)  # type: ignore[arg-type]  # a variable's type is an input type
    return arguments


class Arguments(Visitor):
    """The places of argument values, the arguments with their types, and the paths where
    each variable is used."""

    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.places: dict[int, Place] = {}
        self.roots: list[tuple[ArgumentNode, GraphQLInputType]] = []
        self.uses: dict[str, list[str]] = {}
        self.definitions: list[VariableDefinitionNode] = []

    def enter_argument(self, node: ArgumentNode, *_: object) -> None:
        argument = self.type_info.get_argument()
        if argument is not None:
            self.roots.append((node, argument.type))
            self._walk(node.value, argument.type, node.name.value)

    def _walk(self, value: ValueNode, type_: GraphQLInputType, path: str) -> None:
        self.places[id(value)] = Place(path, type_)
        inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        if isinstance(value, VariableNode):
            self.uses.setdefault(value.name.value, []).append(path)
        elif isinstance(value, ListValueNode) and isinstance(inner, GraphQLList):
            for index, item in enumerate(value.values):
                self._walk(item, inner.of_type, f"{path}[{index}]")
        elif isinstance(inner, GraphQLList) and not isinstance(value, ListValueNode):
            self._walk(value, inner.of_type, path)  # one value where a list is expected: a list of one
        elif isinstance(value, ObjectValueNode) and isinstance(inner, GraphQLInputObjectType):
            for field in value.fields:
                name = field.name.value
                if name in inner.fields:
                    self._walk(field.value, inner.fields[name].type, f"{path}.{name}")
                else:
                    self.places[id(field)] = Place(f"{path}.{name}", inner)


def problem_in_literal(node: ValueNode, type_: GraphQLInputType, path: str) -> tuple[str, str] | None:
    """The first thing wrong with a literal, with its path; None when it fits."""
    if isinstance(node, VariableNode):
        return None
    if isinstance(node, NullValueNode):
        return (path, "must not be null") if isinstance(type_, GraphQLNonNull) else None
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(inner, GraphQLList):
        items = node.values if isinstance(node, ListValueNode) else (node,)
        paths = [f"{path}[{i}]" for i in range(len(items))] if isinstance(node, ListValueNode) else [path]
        return next(
            (
                p
                for item, at in zip(items, paths, strict=True)
                if (p := problem_in_literal(item, inner.of_type, at))
            ),
            None,
        )
    if isinstance(inner, GraphQLInputObjectType):
        if not isinstance(node, ObjectValueNode):
            return path, f"{_shown(print_ast(node))} is not an object; {_fields_of(inner)}"
        given = {field.name.value: field.value for field in node.fields}
        return _object_problem(inner, given, path, problem_in_literal)
    return _leaf_problem(inner, print_ast(node), lambda: _parses_literal(inner, node), path)


def problem_in_value(value: Any, type_: GraphQLInputType, path: str) -> tuple[str, str] | None:
    """The first thing wrong with a variable's JSON value, with its path; None when it fits."""
    if value is None:
        return (path, "must not be null") if isinstance(type_, GraphQLNonNull) else None
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(inner, GraphQLList):
        if not isinstance(value, list):
            return problem_in_value(value, inner.of_type, path)
        return next(
            (
                p
                for i, item in enumerate(value)
                if (p := problem_in_value(item, inner.of_type, f"{path}[{i}]"))
            ),
            None,
        )
    if isinstance(inner, GraphQLInputObjectType):
        if not isinstance(value, dict):
            return path, f"{_shown(repr(value))} is not an object; {_fields_of(inner)}"
        return _object_problem(inner, value, path, problem_in_value)
    shown = value if isinstance(value, str) else repr(value)
    return _leaf_problem(
        inner, f'"{shown}"' if isinstance(value, str) else shown, lambda: _parses(inner, value), path
    )


def _object_problem(
    type_: GraphQLInputObjectType, given: Mapping[str, Any], path: str, check: Any
) -> tuple[str, str] | None:
    for name in given:
        if name not in type_.fields:
            return f"{path}.{name}", f"is not a field of {type_.name}; {_fields_of(type_)}"
    if _is_one_of(type_) and sum(1 for v in given.values() if not _is_null(v)) != 1:
        return path, f"needs exactly one of {', '.join(type_.fields)}"
    for name, field in type_.fields.items():
        if name not in given:
            if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined:
                return f"{path}.{name}", "is required"
            continue
        found = check(given[name], field.type, f"{path}.{name}")
        if found is not None:
            return found  # type: ignore[no-any-return]  # check returns the same as this
    return None


def _leaf_problem(type_: Any, shown: str, parses: Any, path: str) -> tuple[str, str] | None:
    if parses():
        return None
    if isinstance(type_, GraphQLEnumType):
        return path, f"{_shown(shown)} is not one of {', '.join(type_.values)}"
    noun, form = SCALARS.get(type_.name, ("a value of " + type_.name, type_.name))
    return path, f"{_shown(shown)} is not {noun}; expected {form}"


def _parses_literal(type_: GraphQLScalarType | GraphQLEnumType, node: ValueNode) -> bool:
    try:
        return type_.parse_literal(node) is not Undefined
    except Exception:  # any failure of a scalar's parser means: not this form
        return False


def _parses(type_: GraphQLScalarType | GraphQLEnumType, value: Any) -> bool:
    try:
        return type_.parse_value(value) is not Undefined
    except Exception:  # any failure of a scalar's parser means: not this form
        return False


def _is_one_of(type_: GraphQLInputObjectType) -> bool:
    """graphql-core's flag, or strawberry's ``one_of=True``, which it keeps as a directive."""
    definition = (type_.extensions or {}).get("strawberry-definition")
    directives = getattr(definition, "directives", ()) or ()
    return type_.is_one_of or any(isinstance(directive, OneOf) for directive in directives)


def _fields_of(type_: Any) -> str:
    return f"its fields are {', '.join(_named(type_).fields)}"


def _named(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _shown(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _is_null(value: Any) -> bool:
    return value is None or isinstance(value, NullValueNode)


def _variable_definitions(document: DocumentNode) -> Iterator[VariableDefinitionNode]:
    for definition in document.definitions:
        yield from getattr(definition, "variable_definitions", None) or ()
