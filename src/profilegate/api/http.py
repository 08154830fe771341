"""The ``/graphql`` endpoint: authentication, body limit, media types and context."""

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict, cast

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema import BaseSchema

from profilegate.api.console import graphiql_page
from profilegate.api.context import Context
from profilegate.api.graphql_http import (
    check_body,
    check_operation_name,
    content_type,
    is_request_error,
    parsed_json,
    prefers_graphql_response,
    refusal,
    without_data,
)
from profilegate.api.limits import PERSISTED_QUERY_REQUIRED
from profilegate.api.origins import allowing, cross_origin, is_options, origin_refused, preflight_answer
from profilegate.api.persisted import PersistedDocuments
from profilegate.api.rate_limits import RATE_LIMITED_CLOSE_CODE, RateLimiter, client_address, rate_limited
from profilegate.api.storefront import PROOF_HEADER, REFUSAL_LIMIT, StorefrontAccess
from profilegate.domain.keys import Principal, Role
from profilegate.service.aggregate_check import CheckRules
from profilegate.service.changes import ChangeRecorder
from profilegate.service.destinations.deliverer import Deliveries
from profilegate.service.feed import FeedFollower
from profilegate.service.identify import IdentifyRules
from profilegate.service.keys import Authenticator
from profilegate.service.profiles import ProfileRules
from profilegate.service.segments import SegmentCatalogue, SegmentRules
from profilegate.service.tiers import ActivePolicy, TierRules
from profilegate.service.tracking import TrackingRules
from profilegate.storage.store import Repositories

PRINCIPAL = "profilegate.principal"
RATE_LIMITER = "profilegate.rate_limiter"
SHOPPER = "profilegate.shopper"  # a storefront request's shopper proof, verified


class GatewayState(TypedDict):
    """The lifespan state every request sees."""

    repos: Repositories
    authenticator: Authenticator
    rules: ProfileRules
    tracking: TrackingRules
    check: CheckRules
    identify: IdentifyRules
    phone_region: str
    tier_policy: ActivePolicy
    tier_rules: TierRules
    segments: SegmentCatalogue
    segment_rules: SegmentRules
    feed: ChangeRecorder
    follower: FeedFollower
    storefront: StorefrontAccess
    deliveries: Deliveries
    clock: Callable[[], datetime]


class NegotiatedResponse(Response):
    """Strawberry's sub-response, remembering which JSON media type the client asked for."""

    graphql_response_json: bool = False


class TextFrames(ASGIWebSocketAdapter):
    """GraphQL WebSocket protocols speak in text frames; orjson's bytes would go out as binary."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as error:
            raise WebSocketDisconnected from error


class ScopedRequestAdapter(StarletteRequestAdapter):
    """Strawberry's request adapter, keeping the ASGI scope for the persisted-operation lookup."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.scope = request.scope


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context, orjson and GraphQL-over-HTTP media types."""

    websocket_adapter_class = TextFrames
    request_adapter_class = ScopedRequestAdapter

    def __init__(self, schema: BaseSchema, *, clock: Callable[[], datetime], ide: bool) -> None:
        super().__init__(schema, graphql_ide="graphiql" if ide else None)
        self._clock = clock
        self._persisted = PersistedDocuments(clock)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        state = cast(GatewayState, request.scope["state"])
        if isinstance(response, NegotiatedResponse):
            response.graphql_response_json = prefers_graphql_response(request.headers.get("accept", ""))
        return Context(
            repos=state["repos"],
            caller=request.scope.get(PRINCIPAL),
            rules=state["rules"],
            tracking=state["tracking"],
            check=state["check"],
            identify=state["identify"],
            phone_region=state["phone_region"],
            tier_policy=state["tier_policy"],
            tier_rules=state["tier_rules"],
            segments=state["segments"],
            segment_rules=state["segment_rules"],
            feed=state["feed"],
            follower=state["follower"],
            storefront=state["storefront"],
            deliveries=state["deliveries"],
            shopper=request.scope.get(SHOPPER),
            now=self._clock(),
            socket=request if isinstance(request, WebSocket) else None,
            scope=request.scope,
        )

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """A persisted operation's hash in place of the query: the registered document runs."""
        check_body(
            request.method, request.headers, await request.get_body() if request.method == "POST" else b""
        )
        data = await super().parse_http_body(request)
        if isinstance(data, list):
            return data
        check_operation_name(data)
        scope = cast(ScopedRequestAdapter, request).scope
        operations = cast(GatewayState, scope["state"])["repos"].persisted_operations
        await self._persisted.substitute(operations, data, await _document_id(request, data), scope)
        return data

    def parse_json(self, data: str | bytes) -> Any:
        return parsed_json(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strawberry answers a refused HTTP request in plain text; we answer in the negotiated JSON."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except HTTPException as error:
            response = refusal(error, prefers_graphql_response(request.headers.get("accept", "")))
        await response(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL with its scripts and styles from this gateway (``api.console``), not a CDN."""
        return graphiql_page()

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """Not for a persisted operation asked for by GET (its hash in place of the query)."""
        params = request.query_params
        persisted = "documentId" in params or "extensions" in params
        return not persisted and super().should_render_graphql_ide(request)

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        """A browser cannot set headers on a WebSocket: it may send its key in the first message,
        ``{"authorization": "Bearer <key>"}`` (the ``connectionParams`` of GraphQL clients)."""
        if context.caller is None:
            params = context.connection_params or {}
            token = params.get("authorization") or params.get("Authorization")
            socket = context.socket
            if isinstance(token, str) and socket is not None:
                bearer = token.removeprefix("Bearer ").removeprefix("bearer ").strip()
                state = cast(GatewayState, socket.scope["state"])
                context.caller = await state["authenticator"].authenticate(bearer)
            if context.caller is None:
                raise ConnectionRejectionError({"message": "a valid API key is required"})
            limiter = socket.scope.get(RATE_LIMITER) if socket is not None else None
            client = client_address(socket.scope) if socket is not None else None
            if isinstance(limiter, RateLimiter) and not limiter.take(context.caller, client).allowed:
                raise ConnectionRejectionError({"message": "rate limit exceeded", "code": "RATE_LIMITED"})
        return None

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = NegotiatedResponse()
        sub_response.status_code = None  # type: ignore[assignment]  # strawberry's "not set" marker
        del sub_response.headers["content-length"]
        return sub_response

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        graphql_json = isinstance(sub_response, NegotiatedResponse) and sub_response.graphql_response_json
        refused = graphql_json and isinstance(response_data, dict) and is_request_error(response_data)
        if refused and isinstance(response_data, dict):
            response_data = without_data(response_data)  # the watershed: nothing ran, so no data entry
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = content_type(graphql_json)
        if refused:
            response.status_code = 400
        if isinstance(response_data, dict) and _needs_persisted(response_data):
            response.status_code = 403  # whatever the media type: this key may not send queries
        return response


async def _document_id(request: AsyncHTTPRequestAdapter, data: GraphQLRequestData) -> object:
    """The request's ``documentId``, looked for only when it sent neither a query nor extensions."""
    if data.query is not None or data.extensions:
        return None
    if request.method == "GET":
        return request.query_params.get("documentId")
    body = orjson.loads(await request.get_body())
    return body.get("documentId") if isinstance(body, dict) else None


def _needs_persisted(data: GraphQLHTTPResponse) -> bool:
    """A persisted-only key sent an ad-hoc query (``api.limits``): refused, nothing ran."""
    errors = cast(list[dict[str, Any]], data.get("errors") or [])
    return any((e.get("extensions") or {}).get("code") == PERSISTED_QUERY_REQUIRED for e in errors)


class BodyTooLargeError(Exception):
    pass


class Guard:
    """Authenticates the caller, checks its role, its browser origin and its rate, and caps the
    body before handing over to ``app``.

    ``ide``: a GraphQL view whose IDE page is served without a key (development only).
    ``limiter``: the per-key token buckets, shared by every guarded route.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        roles: frozenset[Role] | None = None,
        ide: GraphQLView | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._view = app
        self._max_body_bytes = max_body_bytes
        self.roles = roles  # also read by api.access_table (docs/access.md)
        self._ide = ide
        self._limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_options(scope):
            state = cast(GatewayState, scope["state"])
            await (await preflight_answer(scope, state["authenticator"]))(scope, receive, send)
            return
        if scope["type"] == "http" and self._ide is not None and _asks_for_ide(scope):
            # The IDE page is static; the queries it sends carry a key like any other.
            page = await self._ide.render_graphql_ide(Request(scope, receive))
            await page(scope, receive, send)
            return
        principal = await self._authenticate(scope)
        if principal is None and scope["type"] == "websocket" and _header(scope, b"authorization") is None:
            # The key may come with the connection's first message (GraphQLView.on_ws_connect).
            scope[RATE_LIMITER] = self._limiter
            await self._view(scope, receive, send)
            return
        if principal is None:
            await self._refuse(scope, receive, send)
            return
        if self.roles is not None and principal.role not in self.roles:
            await _forbidden(self.roles)(scope, receive, send)
            return
        scope[PRINCIPAL] = principal
        origin = cross_origin(scope)
        if origin is not None and origin not in principal.allowed_origins:
            await origin_refused(origin)(scope, receive, send)
            return
        if origin is not None:
            send = allowing(origin, send)
        if not await self._within_rate(principal, scope, receive, send):
            return
        if not await self._storefront_checked(principal, scope, receive, send):
            return
        if scope["type"] != "http":
            await self._view(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._max_body_bytes:
            await _too_large(self._max_body_bytes)(scope, receive, send)
            return
        await self._capped(scope, receive, send)

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self._max_body_bytes:
                raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._view(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            await _too_large(self._max_body_bytes)(scope, receive, send)

    async def _within_rate(self, principal: Principal, scope: Scope, receive: Receive, send: Send) -> bool:
        """Take a token from the caller's bucket; answer 429 (or close a socket with 4429) when empty."""
        if self._limiter is None:
            return True
        taken = self._limiter.take(principal, client_address(scope))
        if taken.allowed:
            return True
        await _refuse_rate(rate_limited(self._limiter.limit_of(principal.role), taken), scope, receive, send)
        return False

    async def _storefront_checked(
        self, principal: Principal, scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """A storefront client past its refusals is answered 429; else its shopper proof is read."""
        state = cast(GatewayState, scope["state"])
        slowed = state["storefront"].slowed(principal, client_address(scope))
        if slowed is not None:
            refusal = rate_limited(REFUSAL_LIMIT, slowed, "refusals for want of a shopper proof")
            await _refuse_rate(refusal, scope, receive, send)
            return False
        header = _header(scope, PROOF_HEADER)
        scope[SHOPPER] = state["storefront"].read_proof(principal, header, state["clock"]())
        return True

    async def _authenticate(self, scope: Scope) -> Principal | None:
        header = _header(scope, b"authorization")
        if header is None or not header.lower().startswith("bearer "):
            return None
        state = cast(GatewayState, scope["state"])
        return await state["authenticator"].authenticate(header[7:].strip())

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await WebSocket(scope, receive, send).close(code=4401, reason="Unauthorized")
            return
        body: dict[str, Any] = {
            "errors": [
                {
                    "message": "a valid API key is required: send 'Authorization: Bearer <key>'",
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ]
        }
        response = JSONResponse(body, status_code=401, headers={"www-authenticate": "Bearer"})
        await response(scope, receive, send)


async def _refuse_rate(refusal: Response, scope: Scope, receive: Receive, send: Send) -> None:
    """The 429 over HTTP; over a WebSocket as the handshake's answer where the server can send
    one, else a close with 4429."""
    if scope["type"] == "http":
        await refusal(scope, receive, send)
    elif "websocket.http.response" in scope.get("extensions", {}):
        await WebSocket(scope, receive, send).send_denial_response(refusal)  # the handshake gets the 429
    else:
        await WebSocket(scope, receive, send).close(code=RATE_LIMITED_CLOSE_CODE, reason="Rate limited")


def _forbidden(roles: frozenset[Role]) -> Response:
    names = ", ".join(sorted(role.value for role in roles))
    body = {
        "errors": [
            {"message": f"this endpoint needs one of the roles: {names}", "extensions": {"code": "FORBIDDEN"}}
        ]
    }
    return JSONResponse(body, status_code=403)


def _too_large(limit: int) -> Response:
    body = {
        "errors": [
            {
                "message": f"the request body is larger than the limit of {limit} bytes",
                "extensions": {"code": "PAYLOAD_TOO_LARGE", "limit": limit},
            }
        ]
    }
    return JSONResponse(body, status_code=413)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return cast(bytes, value).decode("latin-1")
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def _asks_for_ide(scope: Scope) -> bool:
    accept = _header(scope, b"accept") or ""
    return scope["method"] == "GET" and "text/html" in accept and b"query=" not in scope["query_string"]


def utc_now() -> datetime:
    """Now, to the millisecond: what a BSON date holds, so answers read back exactly as written."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
