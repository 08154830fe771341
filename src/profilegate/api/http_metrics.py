"""Times every HTTP request by route template, method and role, and counts 4xx/5xx answers."""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from profilegate.api import prometheus
from profilegate.api.http import PRINCIPAL

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


class HttpMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app answers

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, noting_status)
        finally:
            labels = (_route(scope), _method(scope), prometheus.role_of(scope.get(PRINCIPAL)))
            prometheus.http_duration.labels(*labels).observe(time.perf_counter() - started)
            if status >= 400:
                prometheus.count_error("http", str(status))


def _route(scope: Scope) -> str:
    """The matched route's template (``/v1/segments/{key}/audience``), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _method(scope: Scope) -> str:
    method = scope.get("method", "")
    return method if method in METHODS else prometheus.OTHER
