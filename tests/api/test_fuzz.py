"""A bounded fuzz run of the whole GraphQL schema through the real ASGI app.

schemathesis generates, for every root field, queries and mutations that fit the schema
(positive) and ones that break it (negative: wrong types, missing arguments). Each is sent
with the admin key; no answer may be a 5xx, an internal error (``INTERNAL_SERVER_ERROR``,
masked or not, means the server hit a bug), or an error carrying Python internals.

``FUZZ_EXAMPLES`` (default 25 per root field, about half a minute on two cores) and
``FUZZ_RANDOM=1`` (new examples on every run, not the same reproducible ones) widen it by hand.
"""

import json
import os
import re
from typing import Any

import graphql
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Err
from schemathesis.graphql import nodes
from schemathesis.schemas import APIOperation

from profilegate.api.schema import schema_sdl
from profilegate.settings import Settings
from tests.gateway import ADMIN_KEY, GatewayClient

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
INTERNAL = "INTERNAL_SERVER_ERROR"
# What only Python internals put into a message: a traceback, a library, an exception class.
PYTHON_INTERNALS = re.compile(
    r"Traceback|File \"|\bline \d+, in\b|pymongo|pydantic|strawberry|starlette|profilegate\.|"
    r"\b(Key|Value|Type|Attribute|Assertion|Index|Runtime|Lookup|Name|Validation|DuplicateKey)Error\b|"
    r"\bOperationFailure\b|\bException\b"
)

SDL = schema_sdl()  # the code's schema (tests/test_schema_artifact.py holds schema.graphql to it)
GRAPHQL_SCHEMA = graphql.build_schema(SDL)
SCHEMA_WORDS = frozenset(re.findall(r"\w+", SDL))  # InvalidInputError is one of ours, not Python's


def _object(fields: dict[str, graphql.ValueNode]) -> graphql.ObjectValueNode:
    return nodes.Object(
        [graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in fields.items()]
    )


JSON_LEAVES = st.one_of(
    st.text(max_size=20).map(nodes.String),
    st.integers(min_value=-(2**31), max_value=2**31 - 1).map(nodes.Int),
    st.booleans().map(nodes.Boolean),
    st.just(nodes.Null),
)
JSON_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)  # a literal's keys are Names
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(nodes.List),
        st.dictionaries(JSON_KEYS, inner, max_size=4).map(_object),
    ),
    max_leaves=12,
)
schemathesis.graphql.scalar("JSON", JSON_VALUES)


def root_fields() -> dict[str, APIOperation[Any, Any, Any, Any]]:
    """schemathesis' operations, one per root field (``Query.profile``), by label."""
    found = {}
    for result in schemathesis.graphql.from_file(SDL).get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        found[result.ok().label] = result.ok()
    return found


OPERATIONS = root_fields()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The run sends a few hundred requests with the admin key: no rate limit in its way."""
    return settings.model_copy(
        update={"rate_limit_admin_per_second": 1e6, "rate_limit_admin_burst": 1_000_000}
    )


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@examples(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # report the query as sent: no time spent shrinking
    # One gateway (and database) serves all examples of a root field: state piles up, as in use.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mode=st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]), data=st.data())
async def test_no_answer_to_a_generated_operation_is_a_server_error(
    gateway: GatewayClient, label: str, mode: GenerationMode, data: st.DataObject
) -> None:
    case = data.draw(OPERATIONS[label].as_strategy(generation_mode=mode), label="case")
    query = one_key_per_one_of(str(case.body)) if mode is GenerationMode.POSITIVE else str(case.body)

    response = await gateway.http.post(
        "/graphql", json={"query": query}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )

    problems = answer_problems(response.status_code, response.text)
    assert not problems, f"{label} ({mode}): {problems}\nquery:\n{query}\nanswer: {response.text[:2000]}"


def answer_problems(status: int, text: str) -> list[str]:
    problems = [f"HTTP {status}"] if status >= 500 else []
    try:
        body: dict[str, Any] = json.loads(text)
    except ValueError:
        return [*problems, "the answer is not JSON"]
    for error in body.get("errors") or []:
        if (error.get("extensions") or {}).get("code") == INTERNAL:
            problems.append(f"internal error {error.get('extensions')}")
        leaked = [m.group(0) for m in PYTHON_INTERNALS.finditer(str(error)) if m.group(0) not in SCHEMA_WORDS]
        if leaked:
            problems.append(f"Python internals in an error: {leaked}")
    return problems


class OneKeyPerOneOf(graphql.Visitor):
    """Keeps one field (not null if any) of each ``@oneOf`` input object: the generator does not know the
    directive, and without this most positive examples naming a profile fail validation."""

    def __init__(self, type_info: graphql.TypeInfo) -> None:
        super().__init__()
        self._type_info = type_info

    def leave_object_value(self, node: graphql.ObjectValueNode, *_: object) -> graphql.ObjectValueNode | None:
        input_type = graphql.get_named_type(self._type_info.get_input_type())
        if isinstance(input_type, graphql.GraphQLInputObjectType) and input_type.is_one_of and node.fields:
            given = [field for field in node.fields if not isinstance(field.value, graphql.NullValueNode)]
            return graphql.ObjectValueNode(fields=((given or list(node.fields))[0],))
        return None


def one_key_per_one_of(query: str) -> str:
    type_info = graphql.TypeInfo(GRAPHQL_SCHEMA)
    visitor = graphql.TypeInfoVisitor(type_info, OneKeyPerOneOf(type_info))
    return graphql.print_ast(graphql.visit(graphql.parse(query), visitor))
