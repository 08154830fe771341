"""The Prometheus series and the ``/metrics`` endpoint that exposes them.

The series live in prometheus_client's default registry, one set per process. With several
worker processes (``serve --workers N``) each worker counts on its own: set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory and every worker writes its figures there,
so that any worker answers ``/metrics`` with the sum of all. Without it, each worker answers
with its own figures only.

Labels stay low-cardinality: operation names, route templates and store command names are
capped (``BoundedNames``); the rest come from closed sets (roles, error codes, statuses).
"""

import asyncio
import contextlib
import hmac
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, exposition, multiprocess
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from profilegate.domain.keys import Principal
from profilegate.service.feed import FeedFollower
from profilegate.service.tracking import EventOutcome

log = logging.getLogger("profilegate.metrics")

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"
ANONYMOUS = "anonymous"
NO_ROLE = "none"
MAX_OPERATION_NAMES = 100
MAX_COMMAND_NAMES = 50
FEED_SAMPLE_SECONDS = 5.0
# Seconds: from a cached checkout read (~1 ms) to a large export or a stalled store.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")


class BoundedNames:
    """Label values as they come, up to ``limit`` distinct ones; later newcomers become "other"."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, name: str) -> str:
        if name in self._seen:
            return name
        if len(self._seen) >= self._limit or not _NAME.fullmatch(name):
            return OTHER
        self._seen.add(name)
        return name

    def known(self, name: str) -> str:
        """``name`` if it was seen before, else "other" (without adding it)."""
        return name if name in self._seen else OTHER


graphql_duration = Histogram(
    "profilegate_graphql_request_duration_seconds",
    "GraphQL operations (parse, validate, execute), by operation name and the caller's role.",
    ["operation", "role"],
    buckets=LATENCY_BUCKETS,
)
http_duration = Histogram(
    "profilegate_http_request_duration_seconds",
    "HTTP requests, by route template, method and the caller's role.",
    ["route", "method", "role"],
    buckets=LATENCY_BUCKETS,
)
errors = Counter(
    "profilegate_errors",
    "Errors by source (graphql: extensions.code; result: a typed error result's __typename; "
    "http: the 4xx/5xx status) and kind.",
    ["source", "kind"],
)
events = Counter(
    "profilegate_events",
    "Tracked events by outcome (accepted, duplicate, rejected) and path (graphql, http).",
    ["status", "via"],
)
subscriptions_open = Gauge(
    "profilegate_subscriptions_open",
    "Change-feed subscriptions open in this process (summed over live workers).",
    multiprocess_mode="livesum",
)
feed_lag = Gauge(
    "profilegate_feed_lag_places",
    "Places between the change feed's head and where this process's follower is.",
    multiprocess_mode="livemax",
)
feed_idle = Gauge(
    "profilegate_feed_seconds_since_last_change",
    "Seconds since this process's follower passed a change on (or started).",
    multiprocess_mode="livemax",
)
feed_stream_restarts = Counter(
    "profilegate_feed_change_stream_restarts",
    "Times the change stream that wakes the feed follower ended or failed and was reopened, by "
    "reason (invalidated, network, token_lost, refused, error); the feed is polled meanwhile.",
    ["reason"],
)
store_duration = Histogram(
    "profilegate_store_command_duration_seconds",
    "MongoDB commands, from sending to the reply, by command name.",
    ["command"],
    buckets=LATENCY_BUCKETS,
)

operation_names = BoundedNames(MAX_OPERATION_NAMES)
command_names = BoundedNames(MAX_COMMAND_NAMES)


def role_of(principal: object) -> str:
    return principal.role.value if isinstance(principal, Principal) else NO_ROLE


def count_outcomes(outcomes: Iterable[EventOutcome], via: str) -> None:
    for outcome in outcomes:
        events.labels(outcome.status.value, via).inc()


def count_error(source: str, kind: str) -> None:
    errors.labels(source, kind).inc()


def count_stream_restart(reason: str) -> None:
    feed_stream_restarts.labels(reason=reason).inc()


def observe_store_command(command: str, seconds: float) -> None:
    store_duration.labels(command_names(command)).observe(seconds)


async def sample_feed(follower: FeedFollower) -> None:
    """Set the feed gauges from the follower (lag needs one read of the feed's head)."""
    subscriptions_open.set(follower.subscribers)
    feed_idle.set(follower.seconds_since_pass)
    try:
        feed_lag.set(max(0, await follower.changes.head() - follower.position))
    except Exception as error:
        log.warning("reading the change feed's head for the lag gauge failed: %s", error)


async def sample_feed_periodically(follower: FeedFollower, stopping: asyncio.Event) -> None:
    """Keep the gauges fresh between scrapes: with several workers, a scrape reads the others'
    last samples. When this process stops, its live gauges leave the sums."""
    try:
        while not stopping.is_set():
            await sample_feed(follower)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), FEED_SAMPLE_SECONDS)
    finally:
        if os.environ.get(MULTIPROC_DIR):
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]  # untyped upstream


def clear_multiprocess_metrics() -> None:
    """Drop the figures a previous run left in ``PROMETHEUS_MULTIPROC_DIR`` (before workers start)."""
    directory = os.environ.get(MULTIPROC_DIR)
    if directory:
        for leftover in Path(directory).glob("*.db"):
            leftover.unlink(missing_ok=True)


def exposition_text(accept: str) -> tuple[bytes, str]:
    """Every series of this process, or of all worker processes in multiprocess mode."""
    registry = REGISTRY
    if os.environ.get(MULTIPROC_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
    encoder, content_type = exposition.choose_encoder(accept)
    return encoder(registry), content_type


class MetricsEndpoint:
    """``GET /metrics``: served only when a scrape token is configured, and only to a caller
    that sends it as ``Authorization: Bearer <token>`` (no API key needed)."""

    def __init__(self, token: SecretStr | None) -> None:
        self._token = token.get_secret_value().encode() if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.answer(Request(scope, receive))
        await response(scope, receive, send)

    async def answer(self, request: Request) -> Response:
        if self._token is None:
            return _error(404, "NOT_FOUND", "/metrics is served when PROFILEGATE_METRICS_TOKEN is set")
        if not self._authorised(request.headers.get("authorization", "")):
            return _error(401, "UNAUTHENTICATED", "send 'Authorization: Bearer <PROFILEGATE_METRICS_TOKEN>'")
        await sample_feed(request.scope["state"]["follower"])
        body, content_type = exposition_text(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    def _authorised(self, header: str) -> bool:
        sent = header[7:].strip().encode() if header[:7].lower() == "bearer " else b""
        return self._token is not None and hmac.compare_digest(sent, self._token)


def _error(status: int, code: str, message: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)
