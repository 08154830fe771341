"""CORS per API key: a browser page may use a key only from the origins the key allows.

A preflight carries no key, so it is answered for an origin that any live key allows; the
request that follows is checked against its own key. Starlette's ``CORSMiddleware`` cannot
do this: it knows one list of origins for the whole application.
"""

from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Scope, Send

from profilegate.service.keys import Authenticator

ALLOWED_METHODS = "GET, POST"
ALLOWED_HEADERS = "authorization, content-type, shopper-proof"
MAX_AGE_SECONDS = 600


def is_options(scope: Scope) -> bool:
    """Guarded routes answer ``OPTIONS`` only as CORS preflights, without a key."""
    method: str = scope.get("method", "")
    return method == "OPTIONS"


def cross_origin(scope: Scope) -> str | None:
    """The ``Origin`` of a browser request from another origin; ``None`` for server-to-server
    calls (no ``Origin``), same-origin pages (GraphiQL) and WebSockets."""
    if scope["type"] != "http":
        return None
    headers = Headers(scope=scope)
    origin = headers.get("origin")
    if origin is None or _netloc(origin) == headers.get("host", "").lower():
        return None
    return origin


async def preflight_answer(scope: Scope, authenticator: Authenticator) -> Response:
    """What the browser may send from the preflight's origin: 204 with the CORS headers when some
    live key allows the origin, 403 without them otherwise (400 for an ``OPTIONS`` that is no
    preflight)."""
    origin = Headers(scope=scope).get("origin")
    if origin is None or "access-control-request-method" not in Headers(scope=scope):
        return _error(
            400,
            "BAD_REQUEST",
            "OPTIONS answers CORS preflights only: send Origin and Access-Control-Request-Method",
        )
    if not await authenticator.any_key_allows(origin):
        return origin_refused(origin)
    headers = {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": ALLOWED_METHODS,
        "access-control-allow-headers": ALLOWED_HEADERS,
        "access-control-max-age": str(MAX_AGE_SECONDS),
        "vary": "Origin",
    }
    return Response(status_code=204, headers=headers)


def origin_refused(origin: str) -> Response:
    return _error(403, "ORIGIN_NOT_ALLOWED", f"the origin {origin} is not allowed for this API key")


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status)


def allowing(origin: str, send: Send) -> Send:
    """``send`` with the headers that let the page at ``origin`` read the answer."""

    async def send_allowed(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers["access-control-allow-origin"] = origin
            headers["access-control-expose-headers"] = "Retry-After"
            headers.add_vary_header("Origin")
        await send(message)

    return send_allowed


def _netloc(origin: str) -> str:
    try:
        return urlsplit(origin).netloc.lower()
    except ValueError:
        return ""
