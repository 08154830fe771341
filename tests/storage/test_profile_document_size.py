"""One customer's years of history stay a small document: every part of it is capped.

The history is folded in-process through the pure domain functions (as the services apply
it, a week at a time, with merges in between), then the final profile is stored once and
its stored BSON measured.
"""

import random
from datetime import UTC, datetime, timedelta

import bson

from profilegate.domain.aggregates import (
    MAX_CATEGORIES,
    MAX_ORDER_ENTRIES,
    RECENT_EVENT_IDS,
    Aggregates,
    DayBucket,
    OrderEntry,
    apply_events,
    event_digest,
    order_key,
)
from profilegate.domain.events import MAX_EVENT_ID_LENGTH, Channel, EventType, TrackedEvent
from profilegate.domain.extensions import MAX_EXTENSIONS_PER_PROFILE, ExtensionGrant
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.merges import MAX_MERGED_FROM, absorb
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.domain.traits import TraitLimits
from profilegate.storage.documents import Database
from profilegate.storage.store import Repositories
from tests.conftest import TEST_LAYOUT

# The bound docs/profile-document.md states for a profile at every cap with the default
# settings (1,130 days of retention, 20 identities, 16 KiB of traits).
DOCUMENT_BOUND = 1536 * 1024
MONGODB_DOCUMENT_LIMIT = 16 * 1024 * 1024
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
RETENTION = 1130
LIMITS = TraitLimits()
ANN = ProfileRef(identity=Identity(type=IdentityType.EMAIL, value="ann@example.com"))
KINDS = [EventType.PAGE_VIEW, EventType.EMAIL_OPENED, EventType.ADD_TO_CART, EventType.CHECKOUT_STARTED]


def a_day(rng: random.Random, day: datetime, serial: str) -> list[TrackedEvent]:
    """About 200 events: views over thousands of categories, other events, orders, returns."""
    events = [
        TrackedEvent(
            id=f"{serial}-v{n}",
            type=EventType.PRODUCT_VIEW,
            at=day + timedelta(seconds=n),
            channel=Channel.WEB,
            target=ANN,
            categories=((f"department-{rng.randrange(40)}/category-{rng.randrange(5000)}", 1),),
        )
        for n in range(150)
    ]
    events += [
        TrackedEvent(id=f"{serial}-e{n}", type=rng.choice(KINDS), at=day, channel=Channel.APP, target=ANN)
        for n in range(40)
    ]
    for n in range(6):
        kind = (EventType.ORDER_COMPLETED, EventType.ORDER_RETURNED, EventType.ORDER_CANCELLED)[n % 3]
        order = f"{serial}-o{n - n % 3}"
        events.append(
            TrackedEvent(
                id=f"{serial}-{kind.value}-{n}",
                type=kind,
                at=day,
                channel=Channel.WEB,
                target=ANN,
                amount=4999,
                order_id=order,
            )
        )
    return events


def visitor(index: int, rng: random.Random, day: datetime) -> Profile:
    """An anonymous visitor's profile that later turns out to be the same customer."""
    aggregates = apply_events(Aggregates(), a_day(rng, day, f"m{index}")[:30], day, RETENTION)[0]
    return Profile(id=f"{index:032x}", aggregates=aggregates, created_at=day, updated_at=day)


def customer() -> Profile:
    """A profile at its identity, traits and extension caps, the longest values allowed."""
    identities = tuple(
        Identity(type=IdentityType.CUSTOMER_ID, value=f"{n:03d}" + "c" * 251) for n in range(20)
    )
    traits = {f"t{n:03d}": "x" * 40 for n in range(255)}
    extensions = {
        f"ext-{n:02d}" + "e" * 56: ExtensionGrant(
            name=f"ext-{n:02d}" + "e" * 56,
            at=NOW,
            by="partner-" + "p" * 56,
            reason="r" * 500,
            source="rule:" + "s" * 60,
        )
        for n in range(MAX_EXTENSIONS_PER_PROFILE)
    }
    return Profile(
        id="f" * 32,
        identities=identities,
        traits=traits,
        extensions=extensions,
        created_at=NOW,
        updated_at=NOW,
    )


async def stored_size(repos: Repositories, database: Database, profile: Profile) -> int:
    await repos.profiles.insert(profile)
    collection = TEST_LAYOUT.partitioned(database, "profiles").for_id(profile.id)
    document = await collection.find_one({"_id": profile.id})
    assert document is not None
    return len(bson.encode(document))


async def test_three_years_of_one_customer_stay_far_under_16_mib(
    repos: Repositories, database: Database
) -> None:
    rng = random.Random(2026)
    profile = customer()
    start, events, merges = NOW - timedelta(days=3 * 365), 0, 0
    for week in range(3 * 52 + 1):
        monday = start + timedelta(weeks=week)
        batch = [
            event for day in range(7) for event in a_day(rng, monday + timedelta(days=day), f"w{week}d{day}")
        ]
        aggregates = apply_events(profile.aggregates, batch, monday + timedelta(days=7), RETENTION)[0]
        profile = profile.model_copy(update={"aggregates": aggregates})
        events += len(batch)
        for _ in range(2):
            loser = visitor(merges, rng, monday)
            profile = absorb(
                profile, loser, now=monday + timedelta(days=7), retention_days=RETENTION, limits=LIMITS
            )
            merges += 1

    size = await stored_size(repos, database, profile)
    print(f"stored profile: {size} bytes of BSON after {events} events and {merges} merges")

    assert events > 200_000
    assert merges > 300
    assert len(profile.aggregates.categories) == MAX_CATEGORIES
    assert len(profile.aggregates.order_index) <= MAX_ORDER_ENTRIES
    assert len(profile.merged_from) == MAX_MERGED_FROM
    assert size < DOCUMENT_BOUND
    assert size * 16 < MONGODB_DOCUMENT_LIMIT


def at_every_cap(profile: Profile) -> Profile:
    """The profile with every capped part full, each element as large as the rules allow."""
    days = [(NOW - timedelta(days=n)).date().isoformat() for n in range(RETENTION + 1)]
    big = 10**15
    bucket = DayBucket(
        counts={kind.value: big for kind in EventType},
        orders=big,
        gross=big,
        returned=big,
        cancelled=big,
        order_returns=big,
    )
    aggregates = Aggregates(
        counts={kind.value: big for kind in EventType},
        channels={channel.value: big for channel in Channel},
        categories={f"{n:03d}" + "c" * 253: big for n in range(MAX_CATEGORIES)},
        order_index={
            order_key(f"o{n}"): OrderEntry(
                total=big,
                day=days[n % len(days)],
                cancelled=True,
                returned=big,
                at=NOW,
                returned_at=NOW,
                event_id=f"{n:05d}".ljust(MAX_EVENT_ID_LENGTH, "e"),
            )
            for n in range(MAX_ORDER_ENTRIES)
        },
        daily=dict.fromkeys(days, bucket),
        recent_event_ids=tuple(event_digest(f"e{n}") for n in range(RECENT_EVENT_IDS)),
        first_seen=NOW,
        last_seen=NOW,
        last_order_at=NOW,
    )
    merged_from = tuple(f"{n:032x}" for n in range(MAX_MERGED_FROM))
    return profile.model_copy(update={"aggregates": aggregates, "merged_from": merged_from})


async def test_a_profile_at_every_cap_stays_under_the_stated_bound(
    repos: Repositories, database: Database
) -> None:
    size = await stored_size(repos, database, at_every_cap(customer()))
    print(f"profile at every cap: {size} bytes of BSON")

    assert size < DOCUMENT_BOUND
