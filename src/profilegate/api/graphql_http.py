"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): media types, status
codes and the shape of answers to requests that never reached execution.

With ``application/graphql-response+json`` such a request (parameters of the wrong type, a
document that does not parse or validate, variables that do not coerce) answers 400 and has no
``data`` entry (the spec's watershed); with ``application/json`` it answers 200 with an
``errors`` list. Whatever the media type: a body (or GET ``variables``) that is not JSON is 400,
a mutation over GET is 405, a body in another media type or charset than UTF-8 JSON is 415, a
POST without a body is 400.
"""

from collections.abc import Mapping
from typing import Any, cast

import orjson
from cross_web import HTTPException
from starlette.responses import Response
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError

GRAPHQL_RESPONSE = "application/graphql-response+json"
PLAIN_JSON = "application/json"
UTF_8 = "charset=utf-8"


class MalformedRequest(HTTPException):
    """Not a GraphQL-over-HTTP request at all: 4xx whatever the media type asked for."""


def prefers_graphql_response(accept: str) -> bool:
    """Whether the client listed ``application/graphql-response+json`` before plain JSON."""
    graphql_at = accept.find(GRAPHQL_RESPONSE)
    if graphql_at < 0:
        return False
    json_at = accept.find(PLAIN_JSON)
    return json_at < 0 or graphql_at < json_at


def content_type(graphql_json: bool) -> str:
    return f"{GRAPHQL_RESPONSE if graphql_json else PLAIN_JSON}; {UTF_8}"


def check_body(method: str, headers: Mapping[str, str], body: bytes) -> None:
    """A POST carries a UTF-8 JSON body (the spec's ``application/json`` request media type)."""
    if method != "POST":
        return
    media, _, parameters = headers.get("content-type", "").partition(";")
    if media.strip().lower() != PLAIN_JSON:
        raise MalformedRequest(415, "send the request as 'content-type: application/json'")
    charset = parameters.strip().lower().replace(" ", "")
    if charset and charset != UTF_8:
        raise MalformedRequest(415, f"the request's charset must be utf-8, not '{charset[8:]}'")
    if not body.strip():
        raise MalformedRequest(400, "a POST request needs a JSON body with a 'query'")


def parsed_json(data: str | bytes) -> Any:
    """JSON that does not parse is no GraphQL request at all: 400 whatever the media type."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise MalformedRequest(400, f"the request is not valid JSON: {error}") from error


def check_operation_name(data: GraphQLRequestData) -> None:
    """Strawberry checks the types of ``query``, ``variables`` and ``extensions``, not this one."""
    if not isinstance(cast(object, data.operation_name), str | None):
        raise HTTPException(400, "The GraphQL operation's `operationName` must be a string or null.")


def refusal(error: HTTPException, graphql_json: bool) -> Response:
    """Strawberry's plain-text refusal as a GraphQL response, with the status the media type asks."""
    status = error.status_code
    headers = {"allow": "GET, POST"} if status == 405 else {}
    if isinstance(error.__cause__, InvalidOperationTypeError):
        status, headers = 405, {"allow": "POST"}  # a mutation over GET: only POST may change data
    elif status == 400 and not graphql_json and not isinstance(error, MalformedRequest):
        status = 200
    body = orjson.dumps({"errors": [{"message": error.reason}]})
    return Response(body, status_code=status, headers=headers, media_type=content_type(graphql_json))


def is_request_error(data: GraphQLHTTPResponse) -> bool:
    """No execution happened (parse, validation or coercion failed): no data, errors without a path."""
    errors = cast(list[dict[str, object]], data.get("errors") or [])
    return data.get("data") is None and bool(errors) and all(e.get("path") is None for e in errors)


def without_data(data: GraphQLHTTPResponse) -> GraphQLHTTPResponse:
    """A request error's answer in ``application/graphql-response+json``: no ``data`` entry."""
    return cast(GraphQLHTTPResponse, {key: value for key, value in data.items() if key != "data"})
