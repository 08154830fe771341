"""The GraphQL-over-HTTP audit (https://github.com/graphql/graphql-http#audits), item by item.

Each test carries the audit's code and wording; requests go through the real ASGI app, and
``AUDITED`` lists every MUST and SHOULD of the audit (graphql-http 1.23) with the test that holds
it. With ``application/graphql-response+json`` a request that never reached execution answers
4xx and has no ``data`` entry; with ``application/json`` it answers 200 with an ``errors`` list
(https://graphql.github.io/graphql-over-http/draft/#sec-application-json), except a body that is
not JSON at all, which is 400 with either.
"""

from typing import Any

import httpx
import orjson
import pytest

from tests.gateway import ADMIN_KEY, GatewayClient

GRAPHQL_JSON = "application/graphql-response+json"
PLAIN_JSON = "application/json"
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}
TYPENAME = "{ __typename }"
TYPE_BY_NAME = "query($name: String!) { __type(name: $name) { name } }"


async def post(
    gateway: GatewayClient,
    body: object,
    *,
    accept: str | None = GRAPHQL_JSON,
    content_type: str | None = PLAIN_JSON,
) -> httpx.Response:
    """POST ``body`` (bytes as they are, anything else as JSON) to ``/graphql``."""
    headers = dict(AUTH)
    if accept is not None:
        headers["accept"] = accept
    if content_type is not None:
        headers["content-type"] = content_type
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await gateway.http.post("/graphql", content=content, headers=headers)


async def get(gateway: GatewayClient, params: dict[str, str], accept: str = GRAPHQL_JSON) -> httpx.Response:
    return await gateway.http.get("/graphql", params=params, headers={**AUTH, "accept": accept})


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def assert_request_error(response: httpx.Response, accept: str) -> None:
    """A request that never ran: 400 and no ``data`` entry, or 200 with errors for plain JSON."""
    body = response.json()
    assert media_type(response) == accept
    assert isinstance(body["errors"], list)
    assert body["errors"]
    assert all(isinstance(error["message"], str) for error in body["errors"])
    if accept == GRAPHQL_JSON:
        assert response.status_code == 400
        assert "data" not in body
    else:
        assert response.status_code == 200


BOTH = pytest.mark.parametrize("accept", [GRAPHQL_JSON, PLAIN_JSON])
WRONG_TYPES: dict[str, list[object]] = {
    "query": [{"obj": "ect"}, 0, False, ["array"]],
    "operationName": [{"obj": "ect"}, 0, False, ["array"]],
    "variables": ["string", 0, False, ["array"]],
    "extensions": ["string", 0, False, ["array"]],
}
WRONG_TYPE_CASES = [
    pytest.param(name, value, id=f"{name}-{type(value).__name__}")
    for name, values in WRONG_TYPES.items()
    for value in values
]


async def test_22eb_accepts_graphql_response_json_and_matches_the_content_type(
    gateway: GatewayClient,
) -> None:
    response = await post(gateway, {"query": TYPENAME})

    assert response.status_code == 200
    assert media_type(response) == GRAPHQL_JSON
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_4655_accepts_application_json_and_matches_the_content_type(gateway: GatewayClient) -> None:
    response = await post(gateway, {"query": TYPENAME}, accept=PLAIN_JSON)

    assert response.status_code == 200
    assert media_type(response) == PLAIN_JSON


async def test_47de_accepts_any_media_type_and_answers_application_json(gateway: GatewayClient) -> None:
    response = await post(gateway, {"query": TYPENAME}, accept="*/*")

    assert response.status_code == 200
    assert media_type(response) == PLAIN_JSON


async def test_80d8_assumes_application_json_when_accept_is_missing(gateway: GatewayClient) -> None:
    response = await post(gateway, {"query": TYPENAME}, accept=None)

    assert response.status_code == 200
    assert media_type(response) == PLAIN_JSON


@BOTH
async def test_82a3_answers_in_utf_8_and_says_so(gateway: GatewayClient, accept: str) -> None:
    response = await post(gateway, {"query": '{ __type(name: "Zürich") { name } }'}, accept=accept)

    assert "charset=utf-8" in response.headers["content-type"]
    assert response.json() == {"data": {"__type": None}}


async def test_bf61_accepts_a_utf_8_encoded_request(gateway: GatewayClient) -> None:
    body = '{"query": "{ __type(name: \\"Zürich\\") { name } }"}'.encode()

    response = await post(gateway, body, content_type="application/json; charset=utf-8")

    assert response.status_code == 200
    assert response.json() == {"data": {"__type": None}}


async def test_78d5_assumes_utf_8_when_the_request_names_no_charset(gateway: GatewayClient) -> None:
    body = '{"query": "{ __type(name: \\"Zürich\\") { name } }"}'.encode()

    response = await post(gateway, body, content_type="application/json")

    assert response.status_code == 200


async def test_accepts_only_the_utf_8_charset(gateway: GatewayClient) -> None:
    body = '{"query": "{ __typename }"}'.encode("utf-16")

    response = await post(gateway, body, content_type="application/json; charset=utf-16")

    assert 400 <= response.status_code < 500
    assert "charset" in response.json()["errors"][0]["message"]


async def test_2c94_accepts_post_requests(gateway: GatewayClient) -> None:
    assert (await post(gateway, {"query": TYPENAME})).status_code == 200


@BOTH
async def test_5a70_accepts_get_requests_with_url_encoded_parameters(
    gateway: GatewayClient, accept: str
) -> None:
    response = await get(gateway, {"query": TYPENAME}, accept)

    assert response.status_code == 200
    assert media_type(response) == accept
    assert response.json() == {"data": {"__typename": "Query"}}


@BOTH
async def test_9c48_refuses_mutations_over_get_with_405(gateway: GatewayClient, accept: str) -> None:
    mutation = 'mutation { revokeApiKey(idOrName: "nobody") { keys { id } } }'

    response = await get(gateway, {"query": mutation}, accept)

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "GET" in response.json()["errors"][0]["message"]
    assert "data" not in response.json()


async def test_9abe_answers_4xx_to_a_post_without_content_type(gateway: GatewayClient) -> None:
    response = await post(gateway, {"query": TYPENAME}, content_type=None)

    assert 400 <= response.status_code < 500
    assert response.json()["errors"]


async def test_03d4_accepts_application_json_post_requests(gateway: GatewayClient) -> None:
    response = await post(gateway, {"query": TYPENAME}, accept=None, content_type=PLAIN_JSON)

    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_7267_requires_a_request_body_on_post(gateway: GatewayClient) -> None:
    response = await post(gateway, b"")

    assert 400 <= response.status_code < 500
    assert "data" not in response.json()


@pytest.mark.parametrize(
    ("accept", "code"), [(GRAPHQL_JSON, "6610"), (PLAIN_JSON, "3715")], ids=["6610", "3715"]
)
async def test_missing_query_parameter(gateway: GatewayClient, accept: str, code: str) -> None:
    response = await post(gateway, {"notquery": TYPENAME}, accept=accept)

    assert_request_error(response, accept)


@pytest.mark.parametrize(("name", "value"), WRONG_TYPE_CASES)
async def test_4f50_e3e0_69b0_9040_parameter_of_the_wrong_type_is_400_without_data(
    gateway: GatewayClient, name: str, value: object
) -> None:
    body: dict[str, Any] = {"query": TYPENAME, name: value}

    response = await post(gateway, body)

    assert_request_error(response, GRAPHQL_JSON)
    assert name in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(("name", "value"), WRONG_TYPE_CASES)
async def test_9fe0_fb90_f050_3680_parameter_of_the_wrong_type_is_200_with_errors_for_plain_json(
    gateway: GatewayClient, name: str, value: object
) -> None:
    response = await post(gateway, {"query": TYPENAME, name: value}, accept=PLAIN_JSON)

    assert_request_error(response, PLAIN_JSON)


@BOTH
async def test_34a2_13ee_allows_a_string_query(gateway: GatewayClient, accept: str) -> None:
    assert (await post(gateway, {"query": TYPENAME}, accept=accept)).json()["data"] == {"__typename": "Query"}


@BOTH
async def test_8161_b8b3_allows_a_string_operation_name(gateway: GatewayClient, accept: str) -> None:
    body = {"query": "query First { __typename } query Second { __typename }", "operationName": "Second"}

    assert (await post(gateway, body, accept=accept)).json() == {"data": {"__typename": "Query"}}


@BOTH
@pytest.mark.parametrize("name", ["variables", "operationName", "extensions"])
async def test_94b0_0220_allows_null_parameters(gateway: GatewayClient, accept: str, name: str) -> None:
    response = await post(gateway, {"query": TYPENAME, name: None}, accept=accept)

    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


@BOTH
async def test_2ea1_28b9_allows_a_map_of_variables(gateway: GatewayClient, accept: str) -> None:
    body = {"query": TYPE_BY_NAME, "variables": {"name": "Query"}}

    assert (await post(gateway, body, accept=accept)).json() == {"data": {"__type": {"name": "Query"}}}


@BOTH
async def test_d6d5_6a70_allows_url_encoded_json_variables_in_get(
    gateway: GatewayClient, accept: str
) -> None:
    params = {"query": TYPE_BY_NAME, "variables": '{"name": "Query"}'}

    response = await get(gateway, params, accept)

    assert response.json() == {"data": {"__type": {"name": "Query"}}}


@BOTH
async def test_428f_1b7a_allows_a_map_of_extensions(gateway: GatewayClient, accept: str) -> None:
    response = await post(gateway, {"query": TYPENAME, "extensions": {"some": "value"}}, accept=accept)

    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("accept", "code"), [(GRAPHQL_JSON, "B7N8"), (PLAIN_JSON, "BCF8")], ids=["B7N8", "BCF8"]
)
async def test_json_parsing_failure_is_400_whatever_the_media_type(
    gateway: GatewayClient, accept: str, code: str
) -> None:
    response = await post(gateway, b'{ "not a JSON', accept=accept)

    assert response.status_code == 400
    assert media_type(response) == accept
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["message"].startswith("the request is not valid JSON: ")


async def test_get_variables_that_are_not_json_are_400(gateway: GatewayClient) -> None:
    response = await get(gateway, {"query": TYPE_BY_NAME, "variables": '{"name": '}, PLAIN_JSON)

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("accept", "codes"), [(GRAPHQL_JSON, "3E36 17C5 34D6"), (PLAIN_JSON, "F5AF")], ids=["3E36", "F5AF"]
)
async def test_invalid_parameters(gateway: GatewayClient, accept: str, codes: str) -> None:
    response = await post(gateway, {"qeury": TYPENAME}, accept=accept)

    assert_request_error(response, accept)


@pytest.mark.parametrize(
    ("accept", "codes"), [(GRAPHQL_JSON, "865D 556A D586"), (PLAIN_JSON, "572B")], ids=["865D", "572B"]
)
async def test_document_parsing_failure(gateway: GatewayClient, accept: str, codes: str) -> None:
    response = await post(gateway, {"query": "{"}, accept=accept)

    assert_request_error(response, accept)
    assert "Syntax Error" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("accept", "codes"), [(GRAPHQL_JSON, "51FE 74FF 5E5B"), (PLAIN_JSON, "FDE2")], ids=["51FE", "FDE2"]
)
async def test_document_validation_failure(gateway: GatewayClient, accept: str, codes: str) -> None:
    response = await post(gateway, {"query": "{ 8f31403dfe404bccbb0e835f2629c6a7 }"}, accept=accept)

    assert_request_error(response, accept)


@pytest.mark.parametrize(
    ("accept", "code"), [(GRAPHQL_JSON, "86EE"), (PLAIN_JSON, "7B9B")], ids=["86EE", "7B9B"]
)
async def test_variable_coercion_failure(gateway: GatewayClient, accept: str, code: str) -> None:
    body = {"query": "query CoerceFailure($id: ID!){ __typename }", "variables": {"id": None}}

    response = await post(gateway, body, accept=accept)

    assert_request_error(response, accept)


async def test_a_variable_of_the_wrong_shape_is_400_without_data(gateway: GatewayClient) -> None:
    body = {"query": TYPE_BY_NAME, "variables": {"name": {"o": 1}}}

    response = await post(gateway, body)

    assert_request_error(response, GRAPHQL_JSON)


async def test_a_field_error_keeps_data_and_answers_200(gateway: GatewayClient) -> None:
    """Past the watershed: execution ran, so the answer has ``data`` (null here) and 200."""
    query = '{ profile(ref: {identity: {type: EMAIL, value: "not an address"}}) { id } }'

    response = await post(gateway, {"query": query})

    assert response.status_code == 200
    assert response.json()["data"] == {"profile": None}
    assert response.json()["errors"][0]["path"] == ["profile"]


async def test_other_methods_are_405_naming_the_allowed_ones(gateway: GatewayClient) -> None:
    response = await gateway.http.put("/graphql", json={"query": TYPENAME}, headers=AUTH)

    assert response.status_code == 405
    assert {"GET", "POST"} <= {method.strip() for method in response.headers["allow"].split(",")}


# Every MUST and SHOULD of the audit (graphql-http 1.23.1, src/audits/server.ts) -> its test here.
AUDITED = {
    "22EB": "test_22eb_accepts_graphql_response_json_and_matches_the_content_type",
    "4655": "test_4655_accepts_application_json_and_matches_the_content_type",
    "47DE": "test_47de_accepts_any_media_type_and_answers_application_json",
    "80D8": "test_80d8_assumes_application_json_when_accept_is_missing",
    "82A3": "test_82a3_answers_in_utf_8_and_says_so",
    "BF61": "test_bf61_accepts_a_utf_8_encoded_request",
    "78D5": "test_78d5_assumes_utf_8_when_the_request_names_no_charset",
    "2C94": "test_2c94_accepts_post_requests",
    "9ABE": "test_9abe_answers_4xx_to_a_post_without_content_type",
    "03D4": "test_03d4_accepts_application_json_post_requests",
    "34A2": "test_34a2_13ee_allows_a_string_query",
    "13EE": "test_34a2_13ee_allows_a_string_query",
    "8161": "test_8161_b8b3_allows_a_string_operation_name",
    "B8B3": "test_8161_b8b3_allows_a_string_operation_name",
    "94B0": "test_94b0_0220_allows_null_parameters",
    "94B1": "test_94b0_0220_allows_null_parameters",
    "94B2": "test_94b0_0220_allows_null_parameters",
    "0220": "test_94b0_0220_allows_null_parameters",
    "0221": "test_94b0_0220_allows_null_parameters",
    "0222": "test_94b0_0220_allows_null_parameters",
    "2EA1": "test_2ea1_28b9_allows_a_map_of_variables",
    "28B9": "test_2ea1_28b9_allows_a_map_of_variables",
    "428F": "test_428f_1b7a_allows_a_map_of_extensions",
    "1B7A": "test_428f_1b7a_allows_a_map_of_extensions",
    "BCF8": "test_json_parsing_failure_is_400_whatever_the_media_type",
    "B7N8": "test_json_parsing_failure_is_400_whatever_the_media_type",
    "572B": "test_document_parsing_failure",
    "FDE2": "test_document_validation_failure",
    "7B9B": "test_variable_coercion_failure",
    "865D": "test_document_parsing_failure",
    "556A": "test_document_parsing_failure",
    "D586": "test_document_parsing_failure",
    "51FE": "test_document_validation_failure",
    "74FF": "test_document_validation_failure",
    "5E5B": "test_document_validation_failure",
    "86EE": "test_variable_coercion_failure",
}


def test_every_must_and_should_of_the_audit_has_its_test() -> None:
    assert len(AUDITED) == 36
    assert all(callable(globals().get(name)) for name in AUDITED.values()), AUDITED
