"""Segments: saving validated rules, membership of one profile or pushed down to the store,
and the extensions segments maintain on their members."""

import asyncio
import base64
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from profilegate.domain.errors import InvalidInput, UnknownExtension
from profilegate.domain.keys import Principal, Role
from profilegate.domain.money import Currencies
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.domain.segment_chains import check_chains
from profilegate.domain.segment_parser import RuleContext, parse_rule
from profilegate.domain.segment_predicate import Explanation, explain, holds
from profilegate.domain.segment_rules import Rule, referenced_segments
from profilegate.domain.segments import MAX_RULE_LENGTH, SEGMENT_KEY, Segment
from profilegate.service.cached import Cached
from profilegate.service.extensions import remove_extension, set_extension
from profilegate.service.observers import UNOBSERVED, ProfileObserver
from profilegate.service.resolve import find_profile
from profilegate.service.segment_members import (
    MembershipKeeper,
    MembersPath,
    backfill,
    dependents,
    forget_members,
    members_path,
    recorded_page,
    refresh_members,
)
from profilegate.storage.documents import Document
from profilegate.storage.segment_query import segment_filter
from profilegate.storage.store import Repositories

UTC_ZONE = ZoneInfo("UTC")

MAX_PAGE = 500
MAX_REASON = 500
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentRules:
    currencies: Currencies
    consent_purposes: frozenset[str]
    kept_days: int  # the longest window a rule may use: days of buckets profiles keep


@dataclass(frozen=True)
class SegmentInput:
    key: str
    name: str
    rule: str
    maintains_extension: str | None = None


class SegmentCatalogue:
    """Every segment, cached per process for ``cache_seconds``; a save here shows at once.

    It keeps the segments' member records on every profile write from its creation on
    (``MembershipKeeper``), and runs the backfills of segments saved through it.
    """

    def __init__(
        self, repos: Repositories, cache_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.repos = repos
        self._segments = Cached(repos.segments.all, cache_seconds, clock)
        self._backfills: set[asyncio.Task[None]] = set()
        repos.profiles.follow(MembershipKeeper(repos, self.all))

    def backfill(self, key: str, now: datetime) -> None:
        """Record, in the background, the members of ``key`` and of the segments that use it."""
        task = asyncio.create_task(self._backfill(key, now))
        self._backfills.add(task)
        task.add_done_callback(self._backfills.discard)

    async def settled(self) -> None:
        """Wait for the backfills started so far."""
        await asyncio.gather(*self._backfills)

    async def _backfill(self, key: str, now: datetime) -> None:
        segments = await self.all()
        try:
            for segment in dependents(key, segments):
                await backfill(self.repos, segment, segments, now)
        except Exception:
            log.exception("recording the members of segment %s failed; the refresh tries again", key)

    async def all(self) -> list[Segment]:
        return await self._segments.get()

    def forget(self) -> None:
        self._segments.forget()

    async def get(self, key: str) -> Segment | None:
        return next((segment for segment in await self.all() if segment.key == key), None)

    def follow(
        self, now: datetime, observer: ProfileObserver = UNOBSERVED
    ) -> Callable[[set[str]], Awaitable[None]]:
        """What tracking calls with the profiles it changed: their maintained extensions."""

        async def changed(profile_ids: set[str]) -> None:
            await maintain_rule_extensions(self.repos, self, sorted(profile_ids), now, observer)

        return changed


async def save_segment(
    repos: Repositories,
    catalogue: SegmentCatalogue,
    change: SegmentInput,
    rules: SegmentRules,
    *,
    by: str,
    now: datetime,
    observer: ProfileObserver = UNOBSERVED,
) -> tuple[Segment, bool]:
    """Create or replace a segment; a rule that does not validate, or that makes a chain of
    ``in_segment`` loop or reach too deep (``segment_chains``), stores nothing."""
    rule = await validated_rule(repos, change, rules)
    previous = await repos.segments.get(change.key)
    segment = Segment(
        key=change.key,
        name=change.name.strip(),
        rule_text=change.rule,
        rule=rule,
        maintains_extension=change.maintains_extension,
        version=1 if previous is None else previous.version + 1,
        updated_at=now,
        updated_by=by,
    )
    created = await repos.segments.save(segment)
    catalogue.forget()
    for changed in dependents(segment.key, await catalogue.all()):
        await forget_members(repos, changed.key)
    catalogue.backfill(segment.key, now)
    if previous is not None and previous.maintains_extension not in (None, segment.maintains_extension):
        await _release(repos, previous, now, observer)
    if segment.maintains_extension is not None:
        await refresh_rule_extensions(repos, catalogue, now, observer)
    return segment, created


async def validated_rule(repos: Repositories, change: SegmentInput, rules: SegmentRules) -> Rule:
    """The rule of ``change`` as saving it would check it: its input, its parse against what
    the gateway knows, and its chains of ``in_segment``."""
    others = {s.key: s for s in await repos.segments.all() if s.key != change.key}
    await _check_input(repos, change, others.values())
    context = RuleContext(
        currencies=rules.currencies,
        known_extensions=frozenset(d.name for d in await repos.extension_definitions.all()),
        consent_purposes=rules.consent_purposes,
        segments={key: segment.rule for key, segment in others.items()},
        self_key=change.key,
        max_window_days=rules.kept_days,
    )
    rule = parse_rule(change.rule, context)
    check_chains(change.key, rule, context.segments)
    return rule


@dataclass(frozen=True)
class Preview:
    size: int
    sample: list[Profile]


MAX_SAMPLE = 20


async def preview_segment(
    repos: Repositories, change: SegmentInput, rules: SegmentRules, now: datetime, *, sample: int
) -> Preview:
    """The members a rule would have now, counted and sampled by the database, storing nothing."""
    if not 0 <= sample <= MAX_SAMPLE:
        raise InvalidInput("sample", f"must be between 0 and {MAX_SAMPLE}")
    rule = await validated_rule(repos, change, rules)
    segments = {s.key: s.rule for s in await repos.segments.all() if s.key != change.key}
    query = segment_filter(rule, now, segments)
    size = await repos.profiles.count_matching(query)
    found = await repos.profiles.matching_page(query, sample, None) if sample else []
    return Preview(size=size, sample=found)


async def _check_input(repos: Repositories, change: SegmentInput, others: Iterable[Segment]) -> None:
    if not re.fullmatch(SEGMENT_KEY, change.key):
        raise InvalidInput("input.key", "must be lower-case letters, digits and '-', starting with a letter")
    if not change.name.strip() or len(change.name) > 200:
        raise InvalidInput("input.name", "must be 1 to 200 characters")
    if len(change.rule) > MAX_RULE_LENGTH:
        raise InvalidInput("input.rule", f"is longer than {MAX_RULE_LENGTH} characters")
    name = change.maintains_extension
    if name is None:
        return
    if await repos.extension_definitions.get(name) is None:
        raise UnknownExtension(name)
    holder = next((s for s in others if s.maintains_extension == name), None)
    if holder is not None:
        raise InvalidInput(
            "input.maintainsExtension", f"{name} is maintained by segment {holder.key} already"
        )


async def delete_segment(
    repos: Repositories,
    catalogue: SegmentCatalogue,
    key: str,
    now: datetime,
    observer: ProfileObserver = UNOBSERVED,
) -> bool:
    users = sorted(s.key for s in await repos.segments.all() if key in referenced_segments(s.rule))
    if users:
        raise InvalidInput("key", f"segment {key} is used by in_segment in {', '.join(users)}")
    segment = await repos.segments.get(key)
    deleted = await repos.segments.delete(key)
    catalogue.forget()
    await forget_members(repos, key)
    if segment is not None and segment.maintains_extension is not None:
        await _release(repos, segment, now, observer)
    return deleted


def memberships(profile: Profile, segments: list[Segment], now: datetime) -> list[str]:
    rules = {segment.key: segment.rule for segment in segments}
    return [segment.key for segment in segments if holds(segment.rule, profile, now, rules)]


def explain_membership(
    profile: Profile, segment: Segment, segments: list[Segment], now: datetime, currencies: Currencies
) -> Explanation:
    rules = {s.key: s.rule for s in segments}
    return explain(segment.rule, profile, now, rules, currencies=currencies)


def members_query(segment: Segment, segments: list[Segment], now: datetime) -> Document:
    return segment_filter(segment.rule, now, {s.key: s.rule for s in segments})


async def segment_size(repos: Repositories, segment: Segment, segments: list[Segment], now: datetime) -> int:
    return await repos.profiles.count_matching(members_query(segment, segments, now))


async def segment_members(
    repos: Repositories,
    segment: Segment,
    segments: list[Segment],
    now: datetime,
    *,
    first: int,
    after: str | None,
) -> tuple[list[Profile], str | None]:
    """A page of members in id order, and the cursor of the next page (None on the last)."""
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput("first", f"must be between 1 and {MAX_PAGE}")
    last_id = None if after is None else decode_cursor(after)
    if await members_path(repos, segment) == MembersPath.RECORDED:
        recorded = await recorded_page(repos, segment, segments, now, first, last_id)
        page, more = recorded.profiles, recorded.more
    else:
        found = await repos.profiles.matching_page(members_query(segment, segments, now), first + 1, last_id)
        page, more = found[:first], len(found) > first
    return page, encode_cursor(page[-1].id) if more else None


def encode_cursor(profile_id: str) -> str:
    return base64.urlsafe_b64encode(f"id:{profile_id}".encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
    except ValueError as error:
        raise InvalidInput("after", "is not a cursor this gateway gave out") from error
    if not decoded.startswith("id:"):
        raise InvalidInput("after", "is not a cursor this gateway gave out")
    return decoded.removeprefix("id:")


def _principal(segment: Segment) -> Principal:
    return Principal(name=segment.extension_source, role=Role.ADMIN)


async def maintain_rule_extensions(
    repos: Repositories,
    catalogue: SegmentCatalogue,
    profile_ids: Iterable[str],
    now: datetime,
    observer: ProfileObserver = UNOBSERVED,
) -> None:
    """After events changed these profiles: set or remove the extensions segments maintain."""
    segments = await catalogue.all()
    maintaining = [s for s in segments if s.maintains_extension is not None]
    if not maintaining:
        return
    rules = {s.key: s.rule for s in segments}
    for profile_id in profile_ids:
        profile = await find_profile(repos, ProfileRef(id=profile_id))
        if profile is not None:
            for segment in maintaining:
                await _reconcile(repos, profile, segment, rules, now, observer)


@dataclass(frozen=True)
class Refreshed:
    checked: int  # members and holders of maintained extensions
    recorded: int = 0  # member records written or checked


async def refresh_segments(
    repos: Repositories,
    catalogue: SegmentCatalogue,
    now: datetime,
    observer: ProfileObserver = UNOBSERVED,
    *,
    zone: ZoneInfo = UTC_ZONE,
) -> Refreshed:
    """What the gateway does every ``PROFILEGATE_SEGMENT_REFRESH_SECONDS``: the member records
    follow time (and a backfill that did not finish is made), then the maintained extensions,
    then each segment's size is recorded for today (a shop day of ``zone``)."""
    segments = await catalogue.all()
    recorded = await refresh_members(repos, segments, now)
    extensions = await refresh_rule_extensions(repos, catalogue, now, observer)
    sizes = {segment.key: await segment_size(repos, segment, segments, now) for segment in segments}
    await repos.segment_sizes.record(sizes, now.astimezone(zone).date(), now)
    return Refreshed(extensions.checked, recorded)


async def refresh_rule_extensions(
    repos: Repositories, catalogue: SegmentCatalogue, now: datetime, observer: ProfileObserver = UNOBSERVED
) -> Refreshed:
    """Bring every maintained extension in line with its rule at ``now``: members lacking it get
    it, holders that left (a return aged out of its window) lose it. Only members and holders
    are read, found by the database."""
    segments = await catalogue.all()
    rules = {s.key: s.rule for s in segments}
    checked = 0
    for segment in segments:
        name = segment.maintains_extension
        if name is None:
            continue
        holders = {f"extensions.{name}.source": segment.extension_source}
        for query in (segment_filter(segment.rule, now, rules), holders):
            async for profile in repos.profiles.matching(query):
                await _reconcile(repos, profile, segment, rules, now, observer)
                checked += 1
    return Refreshed(checked)


async def _reconcile(
    repos: Repositories,
    profile: Profile,
    segment: Segment,
    rules: dict[str, Rule],
    now: datetime,
    observer: ProfileObserver,
) -> None:
    name = segment.maintains_extension
    assert name is not None, "only a maintaining segment is reconciled"
    inside = holds(segment.rule, profile, now, rules)
    current = profile.extensions.get(name)
    held = current is not None and current.active(now)
    ref = ProfileRef(id=profile.id)
    if inside and not held:
        reason = f"in segment {segment.key}: {segment.rule_text}"[:MAX_REASON]
        await set_extension(
            repos,
            ref,
            name,
            reason,
            None,
            _principal(segment),
            now,
            source=segment.extension_source,
            observer=observer,
        )
    elif not inside and held and current is not None and current.source == segment.extension_source:
        await _take_back(repos, profile.id, segment, f"left segment {segment.key}", now, observer)


async def _release(repos: Repositories, segment: Segment, now: datetime, observer: ProfileObserver) -> None:
    """A deleted segment's extension is removed from the profiles it had set it on."""
    name = segment.maintains_extension
    assert name is not None, "only a maintaining segment releases its extension"
    async for profile in repos.profiles.matching({f"extensions.{name}.source": segment.extension_source}):
        await _take_back(repos, profile.id, segment, f"segment {segment.key} was deleted", now, observer)


async def _take_back(
    repos: Repositories,
    profile_id: str,
    segment: Segment,
    reason: str,
    now: datetime,
    observer: ProfileObserver,
) -> None:
    """Remove the segment's extension from a profile, if the segment set it."""
    name = segment.maintains_extension
    assert name is not None, "only a maintaining segment takes its extension back"
    ref, by = ProfileRef(id=profile_id), _principal(segment)
    source = segment.extension_source
    await remove_extension(repos, ref, name, reason, by, now, only_source=source, observer=observer)
