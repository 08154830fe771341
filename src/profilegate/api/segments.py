"""Segments over GraphQL: save and delete rules, list segments with their size, page members."""

from datetime import date, datetime
from typing import Annotated, Self

import strawberry

from profilegate.api.context import Info
from profilegate.api.errors import (
    InvalidInputError,
    InvalidRuleError,
    SegmentChainError,
    UnknownExtensionError,
    bad_input,
    error_result,
)
from profilegate.api.permissions import ADMIN
from profilegate.api.types import ProfileType
from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.domain.segment_parser import RuleError
from profilegate.domain.segments import Segment
from profilegate.domain.shop_metrics import check_range
from profilegate.service.segment_members import MembersPath, members_path
from profilegate.service.segments import (
    SegmentInput,
    delete_segment,
    preview_segment,
    save_segment,
    segment_members,
    segment_size,
)

strawberry.enum(
    MembersPath,
    name="SegmentMembersPath",
    description="How `members` finds a segment's members: RECORDED, from the memberships kept on "
    "every profile write (one indexed range read); PUSHED_DOWN, by the rule compiled into a database "
    "query, while the memberships of a new or changed segment are being computed.",
)


@strawberry.input
class SaveSegmentInput:
    key: str = strawberry.field(description="Lower-case letters, digits and '-', e.g. frequent-returner.")
    name: str
    rule: str = strawberry.field(description="The rule in the segment language (docs/segments.md).")
    maintains_extension: str | None = strawberry.field(
        default=None,
        description="An extension set on every member and removed when they leave, source rule:<key>.",
    )


@strawberry.type
class SegmentMembers:
    profiles: list[ProfileType]
    next_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null at the end."
    )


@strawberry.type(description="A segment's size on one shop day.")
class SegmentSize:
    day: date
    size: int


@strawberry.type(name="Segment")
class SegmentObject:
    domain: strawberry.Private[Segment]
    key: str
    name: str
    rule: str
    maintains_extension: str | None
    version: int
    updated_at: datetime
    updated_by: str

    @classmethod
    def from_domain(cls, segment: Segment) -> Self:
        return cls(
            domain=segment,
            key=segment.key,
            name=segment.name,
            rule=segment.rule_text,
            maintains_extension=segment.maintains_extension,
            version=segment.version,
            updated_at=segment.updated_at,
            updated_by=segment.updated_by,
        )

    @strawberry.field(description="Members now, counted by the database.")
    async def size(self, info: Info) -> int:
        context = info.context
        return await segment_size(context.repos, self.domain, await context.segments.all(), context.now)

    @strawberry.field(
        description=(
            "The size on each shop day from `from` to `to` (at most 1,830 days), as the hourly refresh"
            " last counted it that day; days without a refresh are missing."
        )
    )
    async def size_history(
        self, info: Info, from_: Annotated[date, strawberry.argument(name="from")], to: date
    ) -> list[SegmentSize]:
        try:
            check_range(from_, to)
        except InvalidInput as error:
            raise bad_input(error) from error
        found = await info.context.repos.segment_sizes.history(self.key, from_, to)
        return [SegmentSize(day=day, size=size) for day, size in found]

    @strawberry.field(description="Which path `members` takes for this segment now.")
    async def members_path(self, info: Info) -> MembersPath:
        return await members_path(info.context.repos, self.domain)

    @strawberry.field(description="Members in id order, found by the database, a page at a time.")
    async def members(self, info: Info, first: int = 50, after: str | None = None) -> SegmentMembers:
        context = info.context
        try:
            page, cursor = await segment_members(
                context.repos,
                self.domain,
                await context.segments.all(),
                context.now,
                first=first,
                after=after,
            )
        except InvalidInput as error:
            raise bad_input(error) from error
        return SegmentMembers(profiles=[ProfileType.from_domain(p) for p in page], next_cursor=cursor)


@strawberry.type
class SegmentSaved:
    segment: SegmentObject
    created: bool


@strawberry.type
class SegmentDeleted:
    key: str
    deleted: bool


SaveSegmentResult = Annotated[
    SegmentSaved | InvalidRuleError | SegmentChainError | InvalidInputError | UnknownExtensionError,
    strawberry.union("SaveSegmentResult"),
]


@strawberry.type
class SegmentPreview:
    size: int = strawberry.field(description="Profiles the rule holds for now, counted by the database.")
    sample: list[ProfileType] = strawberry.field(description="Some of them, in id order.")


PreviewSegmentResult = Annotated[
    SegmentPreview | InvalidRuleError | SegmentChainError | InvalidInputError,
    strawberry.union("PreviewSegmentResult"),
]
DeleteSegmentResult = Annotated[SegmentDeleted | InvalidInputError, strawberry.union("DeleteSegmentResult")]


@strawberry.type
class SegmentQueries:
    @strawberry.field(permission_classes=[ADMIN], description="Every segment, by key.")
    async def segments(self, info: Info) -> list[SegmentObject]:
        return [SegmentObject.from_domain(s) for s in await info.context.segments.all()]

    @strawberry.field(permission_classes=[ADMIN], description="Null when there is no such segment.")
    async def segment(self, info: Info, key: str) -> SegmentObject | None:
        found = await info.context.segments.get(key)
        return None if found is None else SegmentObject.from_domain(found)

    @strawberry.field(
        permission_classes=[ADMIN],
        description="Check a rule as `saveSegment` would and count its members now, saving nothing; "
        "an invalid rule is refused with its line and column.",
    )
    async def preview_segment(
        self,
        info: Info,
        rule: str,
        key: Annotated[
            str, strawberry.argument(description="The segment being edited, for its in_segment chains.")
        ] = "preview",
        sample: Annotated[int, strawberry.argument(description="How many members to show, 0 to 20.")] = 5,
    ) -> PreviewSegmentResult:
        context = info.context
        try:
            preview = await preview_segment(
                context.repos, SegmentInput(key, key, rule), context.segment_rules, context.now, sample=sample
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return SegmentPreview(size=preview.size, sample=[ProfileType.from_domain(p) for p in preview.sample])


@strawberry.type
class SegmentMutations:
    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Create or replace a segment; an invalid rule is refused with its line and column.",
    )
    async def save_segment(self, info: Info, input: SaveSegmentInput) -> SaveSegmentResult:
        context = info.context
        change = SegmentInput(input.key, input.name, input.rule, input.maintains_extension)
        try:
            segment, created = await save_segment(
                context.repos,
                context.segments,
                change,
                context.segment_rules,
                by=context.principal.name,
                now=context.now,
                observer=context.feed,
            )
        except RuleError as error:  # the parser names the rule; here it is the input's
            return error_result(error.under("input"))  # type: ignore[return-value]  # one of the union's members
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return SegmentSaved(segment=SegmentObject.from_domain(segment), created=created)

    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Delete a segment no other segment uses; its extension goes too.",
    )
    async def delete_segment(self, info: Info, key: str) -> DeleteSegmentResult:
        context = info.context
        try:
            deleted = await delete_segment(context.repos, context.segments, key, context.now, context.feed)
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return SegmentDeleted(key=key, deleted=deleted)
