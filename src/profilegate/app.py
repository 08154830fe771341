"""The composition root: ``create_app(settings)`` wires routes, store and schema."""

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from profilegate.api import prometheus
from profilegate.api.audience_endpoint import audience_endpoint
from profilegate.api.console import console_routes, favicon_route, graphiql_routes
from profilegate.api.destination_metrics import DestinationMetrics
from profilegate.api.http import GatewayState, GraphQLView, Guard, utc_now
from profilegate.api.http_metrics import HttpMetrics
from profilegate.api.rate_limits import RateLimiter
from profilegate.api.readiness import readyz
from profilegate.api.request_ids import RequestIds
from profilegate.api.schema import build_schema
from profilegate.api.storefront import StorefrontAccess
from profilegate.api.track_endpoint import track_endpoint
from profilegate.domain.keys import Role
from profilegate.embedded import EmbeddedStore
from profilegate.service.changes import ChangeRecorder
from profilegate.service.destinations.deliverer import Deliveries
from profilegate.service.feed import FeedFollower
from profilegate.service.keys import Authenticator
from profilegate.service.segments import SegmentCatalogue, refresh_segments
from profilegate.service.shop_rollups import WriteBehindShopDays
from profilegate.service.tiers import ActivePolicy
from profilegate.settings import Settings
from profilegate.storage.command_timing import CommandTimer
from profilegate.storage.store import close_client, open_client, prepare

# Shutdown stays well inside an orchestrator's grace period (30 s by default), also when the
# store is gone: background work gets this long to finish its store call, then is cancelled,
STOP_TIMEOUT_SECONDS = 2.0
# and closing the client waits this long for the store.
CLOSE_TIMEOUT_SECONDS = 1.0
log = logging.getLogger("profilegate")


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Starlette:
    schema = build_schema(production=settings.production, limits=settings.query_limits)
    view = GraphQLView(schema, clock=clock, ide=not settings.production)
    ide = None if settings.production else view
    limiter = RateLimiter(settings.rate_limits)  # one bucket per key, across the guarded routes
    gateway = Guard(view, max_body_bytes=settings.max_body_bytes, ide=ide, limiter=limiter)
    tracker = Guard(
        track_endpoint,
        max_body_bytes=settings.max_body_bytes,
        roles=frozenset({Role.ADMIN, Role.INGEST, Role.STOREFRONT}),
        limiter=limiter,
    )

    exporter = Guard(
        audience_endpoint,
        max_body_bytes=settings.max_body_bytes,
        roles=frozenset({Role.ADMIN}),
        limiter=limiter,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[GatewayState]:
        with contextlib.ExitStack() as stack:
            uri, embedded = settings.mongodb_uri, settings.uses_embedded_store
            if uri is None:
                store = stack.enter_context(
                    EmbeddedStore(data_dir=settings.data_dir, engine=settings.embedded_engine)
                )
                uri = store.uri
            assert uri is not None, "an embedded store has a URI once started"
            client = open_client(uri, listeners=[CommandTimer(prometheus.observe_store_command)])
            tasks: list[asyncio.Task[None]] = []
            stopping = asyncio.Event()
            rollups: WriteBehindShopDays | None = None
            try:
                database = client[settings.database]
                repos = await prepare(
                    database,
                    settings.layout,
                    **settings.store_options,
                    segment_indexes=settings.segment_indexes and not embedded,
                )
                rollups = WriteBehindShopDays(
                    repos.shop_days,
                    repos.events,
                    settings.tracking_rules.shop.zone,
                    clock,
                    writer=uuid.uuid4().hex,
                    flush_seconds=settings.shop_rollup_flush_seconds,
                    silent_seconds=settings.shop_rollup_silent_seconds,
                )
                await rollups.start()
                repos = dataclasses.replace(repos, shop_days=rollups)
                app.state.database = database
                admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
                rules = settings.profile_rules
                segments = SegmentCatalogue(repos, settings.segment_cache_seconds)
                policy = ActivePolicy(repos.tier_policies, settings.tier_policy_cache_seconds)
                follower = FeedFollower(
                    repos.changes, settings.feed_rules, on_stream_restart=prometheus.count_stream_restart
                )
                feed = ChangeRecorder(
                    repos.changes,
                    segments,
                    policy,
                    partner_purpose=settings.partner_consent_purpose,
                    written=follower.stored_here,
                )
                deliveries = Deliveries(
                    repos, follower, settings.destination_rules, observer=DestinationMetrics()
                )
                if settings.destinations_deliver:
                    tasks.append(asyncio.create_task(deliveries.run(stopping)))
                tasks += [
                    asyncio.create_task(follower.run(stopping)),
                    asyncio.create_task(rollups.run(stopping)),
                    asyncio.create_task(_prune_periodically(follower, settings, clock, stopping)),
                    asyncio.create_task(prometheus.sample_feed_periodically(follower, stopping)),
                ]
                if settings.segment_refresh_seconds:
                    tasks.append(
                        asyncio.create_task(_refresh_periodically(segments, feed, settings, clock, stopping))
                    )
                yield GatewayState(
                    repos=repos,
                    authenticator=Authenticator(
                        repos.api_keys,
                        admin_key=admin_key,
                        cache_seconds=settings.key_cache_seconds,
                    ),
                    rules=rules,
                    tracking=settings.tracking_rules,
                    check=settings.check_rules,
                    identify=settings.identify_rules,
                    phone_region=settings.default_phone_region,
                    tier_policy=policy,
                    tier_rules=settings.tier_rules,
                    segments=segments,
                    segment_rules=settings.segment_rules,
                    feed=feed,
                    follower=follower,
                    storefront=StorefrontAccess(
                        repos.extension_definitions, cache_seconds=settings.segment_cache_seconds
                    ),
                    deliveries=deliveries,
                    clock=clock,
                )
            finally:
                # Background work ends between store calls: one cancelled mid-call leaves its
                # connection behind.
                stopping.set()
                if tasks:
                    follower.wake()
                    _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_SECONDS)
                    for task in pending:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                if rollups is not None:
                    await _stop_quietly(rollups)
                await close_client(client, within=CLOSE_TIMEOUT_SECONDS)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    console = (
        console_routes(graphiql=ide is not None, shop_zone=settings.shop_time_zone)
        if settings.admin_console
        else []
    )
    pages = console + (graphiql_routes() if ide else [])
    return Starlette(
        routes=[
            *pages,
            favicon_route(),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", prometheus.MetricsEndpoint(settings.metrics_token)),
            Route("/graphql", gateway, methods=["GET", "POST", "OPTIONS"]),
            WebSocketRoute("/graphql", gateway),
            Route("/v1/track", tracker, methods=["POST", "OPTIONS"]),
            Route("/v1/segments/{key}/audience", exporter, methods=["GET", "OPTIONS"]),
        ],
        lifespan=lifespan,
        middleware=[Middleware(RequestIds), Middleware(HttpMetrics)],
    )


async def _refresh_periodically(
    segments: SegmentCatalogue,
    feed: ChangeRecorder,
    settings: Settings,
    clock: Callable[[], datetime],
    stopping: asyncio.Event,
) -> None:
    """Segment member records and the extensions segment rules keep follow time (a return ages
    out of its window)."""
    while not await stopped(stopping, settings.segment_refresh_seconds):
        try:
            await refresh_segments(
                segments.repos, segments, clock(), feed, zone=settings.tracking_rules.shop.zone
            )
        except Exception:
            log.exception("refreshing the extensions segments maintain failed; trying again later")


PRUNE_SECONDS = 3600.0


async def stopped(stopping: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stopping`` is set; whether it is."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return stopping.is_set()


async def _stop_quietly(rollups: WriteBehindShopDays) -> None:
    """Write the rollups held and drop the mark, within ``STOP_TIMEOUT_SECONDS``; if the store
    fails or is gone, the mark stays and the next process rolls the events up again from the log."""
    try:
        await asyncio.wait_for(rollups.stop(), timeout=STOP_TIMEOUT_SECONDS)  # the store may be gone
    except Exception:
        log.exception("writing the shop's day rollups at shutdown failed: recovered at the next start")


async def _prune_periodically(
    follower: FeedFollower, settings: Settings, clock: Callable[[], datetime], stopping: asyncio.Event
) -> None:
    """Drop change-feed segments older than the retention (one collection has a TTL index)."""
    while not await stopped(stopping, PRUNE_SECONDS):
        try:
            await follower.changes.prune(clock() - settings.feed_rules.retention)
        except Exception:
            log.exception("pruning the change feed failed; trying again later")


def app_from_environment() -> Starlette:
    """The factory ``uvicorn --factory`` and ``profilegate serve`` workers use."""
    return create_app(Settings())
