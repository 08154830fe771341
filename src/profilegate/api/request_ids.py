"""A request id for every HTTP request and WebSocket connection.

Taken from the client's ``X-Request-ID`` when it is sane (1-128 characters of letters,
digits and ``._:+/=-``), else generated (32 hex digits). It is sent back in the
``X-Request-ID`` response header (on a WebSocket, with the accept) and every log line
written while the request is handled carries it (``profilegate.logs``).
"""

import re

from asgi_correlation_id import CorrelationIdMiddleware
from asgi_correlation_id.context import correlation_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


def is_sane(request_id: str) -> bool:
    return SANE_REQUEST_ID.fullmatch(request_id) is not None


class RequestIds:
    """asgi-correlation-id's middleware, plus the header on a WebSocket's accept."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = CorrelationIdMiddleware(app, header_name=HEADER, validator=is_sane)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self._app(scope, receive, send)
            return

        async def accept_with_id(message: Message) -> None:
            request_id = correlation_id.get()
            if message["type"] == "websocket.accept" and request_id:
                headers = [*message.get("headers", []), (HEADER.lower().encode(), request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, accept_with_id)
