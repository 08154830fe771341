"""``aggregateCheck``: ``rebuild-aggregates --check`` for admins, its differences a page at a time."""

from typing import Annotated

import strawberry

from profilegate.api.context import Info
from profilegate.api.errors import bad_input
from profilegate.api.permissions import ADMIN
from profilegate.domain.errors import InvalidInput
from profilegate.service.aggregate_check import Difference, Subject, check_aggregates
from profilegate.service.check_pages import (
    DEFAULT_DIFFERENCES_LISTED,
    MAX_DIFFERENCES_LISTED,
    difference_page,
    page_wanted,
)

strawberry.enum(
    Subject,
    name="AggregateCheckSubject",
    description="What a difference is in: a profile (by id) or a shop day rollup (by key).",
)


@strawberry.type(description="One metric kept on write that differs from what the event log gives.")
class AggregateDifference:
    subject: Subject
    id: str = strawberry.field(
        description="The profile's id, or the rollup's key (`2026-11-20`, `2026-11-20|web`)."
    )
    metric: str = strawberry.field(description="e.g. `orders`, `daily.2026-11-20`, `segment.vip`.")
    live: str = strawberry.field(description="What the store holds (amounts in minor units; `-`: none).")
    from_log: str = strawberry.field(description="What the event log gives.")

    @classmethod
    def of(cls, found: Difference) -> "AggregateDifference":
        return cls(
            subject=found.subject, id=found.id, metric=found.metric, live=found.live, from_log=found.logged
        )


@strawberry.type(description="The store against its event log, as `rebuild-aggregates --check` sees it.")
class AggregateCheck:
    agrees: bool = strawberry.field(description="No difference at all: the store is what its log gives.")
    total: int = strawberry.field(description="How many differences there are, on every page.")
    differences: list[AggregateDifference] = strawberry.field(
        description="This page's, sorted by subject, id, metric."
    )
    next_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null at the end."
    )
    profiles: int = strawberry.field(description="Profiles checked.")
    days: int = strawberry.field(description="Shop day rollups checked (the days the log still covers).")
    events: int = strawberry.field(description="Logged events read.")
    unattributed: int = strawberry.field(description="Logged events of no profile (erased, or mid-merge).")


@strawberry.type
class AggregateCheckQueries:
    @strawberry.field(
        permission_classes=[ADMIN],
        description=(
            "Compares each profile's aggregates, checkout payloads and segment memberships, and the "
            "shop's day rollups, with what the event log gives, as `profilegate rebuild-aggregates "
            "--check` does; writes nothing. Reads the whole event log and every profile on each call "
            f"(each page too): O(events) time and memory. `first` at most {MAX_DIFFERENCES_LISTED}."
        ),
    )
    async def aggregate_check(
        self,
        info: Info,
        first: int = DEFAULT_DIFFERENCES_LISTED,
        after: Annotated[str | None, strawberry.argument(description="A `nextCursor`.")] = None,
    ) -> AggregateCheck:
        context = info.context
        try:
            wanted = page_wanted(first, after)
        except InvalidInput as error:
            raise bad_input(error) from error
        checked = await check_aggregates(context.repos, context.check, context.now)
        page = difference_page(checked, wanted)
        return AggregateCheck(
            agrees=not checked.differences,
            total=len(checked.differences),
            differences=[AggregateDifference.of(found) for found in page.differences],
            next_cursor=page.next_cursor,
            profiles=checked.profiles,
            days=checked.days,
            events=checked.events,
            unattributed=checked.unattributed,
        )
