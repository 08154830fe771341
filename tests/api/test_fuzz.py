"""A bounded fuzz run of the whole GraphQL schema through the real ASGI app.

schemathesis generates, for every root field, queries and mutations that fit the schema
(positive) and ones that break it (negative: wrong types, missing arguments). Each is sent
with the admin key; no answer may be a 5xx, an internal error (``INTERNAL_SERVER_ERROR``,
masked or not, means the server hit a bug), or an error carrying Python internals. hypothesis
sends ``/v1/track`` batches of events with wrong, missing and odd values the same way.
Neither may leave an ERROR record or a traceback in the log: a client's mistake is an INFO
line at most (an operator's alerting fires on ERROR).

``FUZZ_EXAMPLES`` (default 25 per root field, about half a minute on two cores) and
``FUZZ_RANDOM=1`` (new examples on every run, not the same reproducible ones) widen it by hand.
"""

import json
import logging
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
    gateway: GatewayClient,
    caplog: pytest.LogCaptureFixture,
    label: str,
    mode: GenerationMode,
    data: st.DataObject,
) -> None:
    case = data.draw(OPERATIONS[label].as_strategy(generation_mode=mode), label="case")
    query = one_key_per_one_of(str(case.body)) if mode is GenerationMode.POSITIVE else str(case.body)
    caplog.set_level(logging.INFO)
    caplog.clear()

    response = await gateway.http.post(
        "/graphql", json={"query": query}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )

    problems = answer_problems(response.status_code, response.text) + log_problems(caplog)
    assert not problems, f"{label} ({mode}): {problems}\nquery:\n{query}\nanswer: {response.text[:2000]}"


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
AMOUNTS = st.sampled_from(
    ["99.50", "1e99999999999", "-1e-99999999999", "NaN", "Infinity", "-1", "abc", "0.001"]
)
TEXTS = st.sampled_from(["", " ", "x" * 300, "a.b", "$where", "ok"])
LINE_ITEMS = st.fixed_dictionaries(
    {},
    optional={
        "sku": TEXTS | ANY_JSON,
        "price": AMOUNTS | ANY_JSON,
        "quantity": ANY_JSON,
        "discount": AMOUNTS,
    },
)
PROPERTIES = st.fixed_dictionaries(
    {},
    optional={
        "orderId": TEXTS,
        "total": AMOUNTS | ANY_JSON,
        "amount": AMOUNTS,
        "price": AMOUNTS,
        "cartTotal": AMOUNTS,
        "currency": st.sampled_from(["EUR", "eur", "XYZ", "JPY"]) | ANY_JSON,
        "items": st.lists(LINE_ITEMS | ANY_JSON, max_size=3),
        "sku": TEXTS,
        "name": TEXTS,
        "engagedSeconds": ANY_JSON,
        "couponCode": TEXTS,
    },
)
IDENTITIES = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["EMAIL", "PHONE", "LOYALTY_CARD", "CUSTOMER_ID", "FAX"]) | ANY_JSON,
        "value": st.sampled_from(["ann@example.com", "+49 30 1234567", "not a number", "12", "@@"])
        | ANY_JSON,
    }
)
EVENTS = st.fixed_dictionaries(
    {},
    optional={
        "id": TEXTS | ANY_JSON,
        "type": st.sampled_from(["page_view", "order_completed", "order_returned", "custom", "nope"])
        | ANY_JSON,
        "at": st.sampled_from(
            ["2026-11-20T09:00:00Z", "31.12.2027", "2026-11-20T09:00:00", "2099-01-01T00:00:00Z"]
        )
        | ANY_JSON,
        "channel": st.sampled_from(["web", "store", "moon"]) | ANY_JSON,
        "identity": IDENTITIES | ANY_JSON,
        "anonymousId": st.sampled_from(["anon-7f3c2a91", "has spaces", ""]) | ANY_JSON,
        "profileId": TEXTS,
        "properties": PROPERTIES | ANY_JSON,
    },
)
TRACK_BODIES = st.fixed_dictionaries({"events": st.lists(EVENTS | ANY_JSON, max_size=4)}) | ANY_JSON


@examples(
    max_examples=EXAMPLES * 4,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=TRACK_BODIES, ndjson=st.booleans())
async def test_no_generated_tracking_batch_is_a_server_error_or_an_error_in_the_log(
    gateway: GatewayClient, caplog: pytest.LogCaptureFixture, body: Any, ndjson: bool
) -> None:
    events = body.get("events") if isinstance(body, dict) else None
    lines = events if ndjson and isinstance(events, list) else None
    content = _json(body) if lines is None else b"\n".join(_json(event) for event in lines)
    media = "application/json" if lines is None else "application/x-ndjson"
    caplog.set_level(logging.INFO)
    caplog.clear()

    response = await gateway.http.post(
        "/v1/track", content=content, headers={"authorization": f"Bearer {ADMIN_KEY}", "content-type": media}
    )

    problems = answer_problems(response.status_code, response.text) + log_problems(caplog)
    assert not problems, f"{problems}\nbody: {content[:2000]!r}\nanswer: {response.text[:2000]}"


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


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()  # integers past 64 bits too, as a client may send them


def log_problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    """ERROR records and tracebacks the request left in the log."""
    problems = [
        f"{r.levelname} from {r.name}: {r.getMessage()[:300]}"
        for r in caplog.records
        if r.levelno >= logging.ERROR
    ]
    problems += [f"a traceback from {r.name}" for r in caplog.records if r.exc_info]
    if "Traceback" in caplog.text:
        problems.append("a traceback in the log output")
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
