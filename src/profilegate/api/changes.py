"""The change feed over GraphQL subscriptions (``graphql-transport-ws`` and legacy ``graphql-ws``)."""

import asyncio
import logging
from collections.abc import AsyncGenerator
from datetime import datetime, timedelta
from typing import Annotated, Self

import strawberry
from graphql import GraphQLError
from starlette.websockets import WebSocket, WebSocketState
from strawberry.scalars import JSON

from profilegate.api import enums  # noqa: F401  (registers the domain enums with the schema first)
from profilegate.api.context import Info
from profilegate.api.permissions import allow
from profilegate.domain.changes import Change, ChangeKind, Scope, decode_cursor
from profilegate.domain.errors import InvalidInput
from profilegate.domain.keys import Role
from profilegate.service.feed import SubscriberLagged, follow

FOLLOWERS = allow(Role.ADMIN, Role.PARTNER)
# A WebSocket close code of the application range (4000-4999): the subscriber fell behind.
LAGGED_CLOSE_CODE = 4413
log = logging.getLogger("profilegate.feed")


@strawberry.type(name="Change", description="One entry of the change feed.")
class ChangeType:
    cursor: str = strawberry.field(description="Pass it as `after` to resume right after this change.")
    kind: ChangeKind
    at: datetime
    profile_id: strawberry.ID
    payload: JSON = strawberry.field(
        description="What changed; its shape depends on `kind` (see the README). Personal fields "
        "(identities, traits) only as far as the key's scope grants them."
    )

    @classmethod
    def from_domain(cls, change: Change, scope: Scope) -> Self:
        return cls(
            cursor=change.cursor,
            kind=change.kind,
            at=change.at,
            profile_id=strawberry.ID(change.profile_id),
            payload=JSON(scope.project(change.payload)),
        )


@strawberry.type
class ChangeSubscriptions:
    @strawberry.subscription(
        permission_classes=[FOLLOWERS],
        description="Follow the change feed: the changes after `after` (without it, from now on), "
        "then live ones, in cursor order, at least once (dedupe by cursor). A subscriber that falls "
        f"behind is closed with code {LAGGED_CLOSE_CODE} and resumes with its last cursor.",
    )
    async def changes(
        self,
        info: Info,
        after: Annotated[
            str | None, strawberry.argument(description="A cursor from an earlier change.")
        ] = None,
        kinds: Annotated[
            list[ChangeKind] | None, strawberry.argument(description="Only these kinds (default all).")
        ] = None,
        segment: Annotated[
            str | None,
            strawberry.argument(
                description="Only changes of profiles in this segment after the change, and its "
                "entered/left changes."
            ),
        ] = None,
    ) -> AsyncGenerator[ChangeType]:
        context = info.context
        scope = context.principal.feed_scope()
        start = _start(after, context.now, context.follower.rules.retention)
        if segment is not None and await context.segments.get(segment) is None:
            raise GraphQLError(
                f"no segment {segment!r}", extensions={"code": "NOT_FOUND", "field": "segment"}
            )
        wanted = None if kinds is None else frozenset(kinds)

        def admits(change: Change) -> bool:
            if not scope.admits(change) or (wanted is not None and change.kind not in wanted):
                return False
            return segment is None or _concerns(change, segment)

        socket = context.socket
        async with context.follower.subscribe(on_lag=lambda: _close_lagged(socket, None)) as subscription:
            try:
                async for change in follow(context.follower, subscription, start, admits):
                    yield ChangeType.from_domain(change, scope)
            except SubscriberLagged as lagged:
                await _close(socket, lagged.last.cursor if lagged.last else after)


def _start(after: str | None, now: datetime, retention: timedelta) -> int | None:
    if after is None:
        return None
    try:
        cursor = decode_cursor(after)
    except InvalidInput as error:
        raise GraphQLError(error.message, extensions={"code": "BAD_USER_INPUT", "field": "after"}) from error
    if cursor.expired(now, retention):
        raise GraphQLError(
            "the cursor is older than the feed keeps changes: re-sync the profiles you follow, then "
            "subscribe without `after`",
            extensions={"code": "CURSOR_EXPIRED", "field": "after"},
        )
    return cursor.seq


def _concerns(change: Change, segment: str) -> bool:
    if change.kind in (ChangeKind.SEGMENT_ENTERED, ChangeKind.SEGMENT_LEFT):
        return bool(change.payload.get("segment") == segment)
    return segment in change.segments


def _close_lagged(socket: WebSocket | None, cursor: str | None) -> None:
    """The follower found this subscriber's queue full: close its connection, without waiting."""
    task = asyncio.get_running_loop().create_task(_close(socket, cursor))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[None]] = set()


async def _close(socket: WebSocket | None, cursor: str | None) -> None:
    if socket is None or socket.application_state is WebSocketState.DISCONNECTED:
        return
    reason = "subscriber fell behind; resubscribe with after: your last cursor"
    if cursor is not None and len(reason) + len(cursor) < 110:
        reason = f"subscriber fell behind; resubscribe with after: {cursor}"
    try:
        await socket.close(code=LAGGED_CLOSE_CODE, reason=reason)
    except RuntimeError:
        log.debug("the lagging subscriber's connection was closed already")
