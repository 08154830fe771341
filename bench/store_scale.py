"""How many profiles the embedded store holds while reads and tracked events stay fast.

Starts the embedded store as the gateway does (mongoeco's SQLite engine in a process of its
own, over the wire, the embedded layout), grows it in steps to profiles that carry a
realistic event history, and at each size times a checkout's profile read, a tracked event
and the creation of new profiles, each through the service functions the API calls. Prints
a Markdown section to stdout and writes nothing unless ``--write PATH`` is given. Progress
goes to stderr.

    .venv/bin/python -m bench.store_scale [--max-profiles N] [--step-factor 2] [--samples 200]
"""

import argparse
import asyncio
import contextlib
import math
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import bson

from bench.machine import TargetResult, publish, target_lines
from profilegate.domain.aggregates import RECENT_EVENT_IDS, Aggregates, DayBucket, OrderEntry, order_key
from profilegate.domain.consents import Consent
from profilegate.domain.events import Channel, EventType, TrackedEvent
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.identities import Identity, IdentityType, normalise_identity
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.embedded import EmbeddedStore
from profilegate.service.profiles import ConsentChange, ProfileChange, new_profile_id, upsert_profile
from profilegate.service.resolve import find_profile
from profilegate.service.tracking import Status, track
from profilegate.settings import Settings
from profilegate.storage.documents import Collection, Database, Document
from profilegate.storage.layout import Layout, load_layout
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.profiles import profile_to_document
from profilegate.storage.store import Repositories, open_client, prepare

READ_TARGET_MS = 2.0
TRACK_TARGET_MS = 10.0
WINDOW_DAYS = 180
GROWTH_BATCH = 250
WARM_UP = 5
PROGRESS_SECONDS = 30.0

CATEGORIES = (
    "running",
    "outdoor",
    "fitness",
    "swimming",
    "cycling",
    "team-sports",
    "kids",
    "shoes",
    "accessories",
    "outlet",
    "yoga",
    "winter",
)
FIRST_NAMES = ("Anna", "Jonas", "Lea", "Finn", "Marie", "Paul", "Sofia", "Elias", "Emma", "Noah", "Mia")
LAST_NAMES = ("Schmidt", "Mueller", "Weber", "Fischer", "Wagner", "Becker", "Hoffmann", "Koch", "Richter")
CITIES = (("Berlin", "10119"), ("Hamburg", "20095"), ("München", "80331"), ("Köln", "50667"))
PURPOSES = ("email_marketing", "personalisation", "ads", "partner_sharing")
CONSENT_SOURCES = ("web-signup-form", "cookie-banner", "app-onboarding", "store-pos")
# How an active day's events split over the types that tracking counts.
DAY_MIX = (
    (EventType.PAGE_VIEW, 0.40),
    (EventType.PRODUCT_VIEW, 0.40),
    (EventType.ADD_TO_CART, 0.10),
    (EventType.EMAIL_OPENED, 0.05),
    (EventType.CHECKOUT_STARTED, 0.05),
)
ORDER_DAY_SHARE = 0.12


# --- options -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    start_profiles: int
    max_profiles: int
    step_factor: float
    samples: int
    creates: int
    events_per_profile: int
    active_days: int
    events_per_day: float
    budget_seconds: float
    keep_going: bool
    seed: int
    write: Path | None


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store_scale",
        description="Profiles the embedded store holds while reads and tracked events stay fast.",
    )
    add = parser.add_argument
    add("--start-profiles", type=int, default=1000, help="first size (default 1000)")
    add("--max-profiles", type=int, default=64000, help="last size (default 64000)")
    add("--step-factor", type=float, default=2.0, help="growth per step (default 2)")
    add("--samples", type=int, default=200, help="reads and tracked events timed per size (default 200)")
    add("--creates", type=int, default=20, help="profiles created through the service per size (default 20)")
    add("--events-per-profile", type=int, default=3, help="events pre-filled in the log per profile")
    add("--active-days", type=int, default=120, help=f"active days in the last {WINDOW_DAYS} (default 120)")
    add("--events-per-day", type=float, default=8.0, help="mean events per active day (default 8)")
    add("--budget-seconds", type=float, default=1500.0, help="bound on the whole run (default 1500)")
    add(
        "--keep-going",
        action="store_true",
        help="keep growing after both medians are over their targets, to see how costs grow",
    )
    add("--seed", type=int, default=1, help="seed of the generated data (default 1)")
    add("--write", type=Path, default=None, help="also append the section to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.start_profiles <= args.max_profiles:
        parser.error("need 1 <= --start-profiles <= --max-profiles")
    if args.step_factor <= 1 or args.samples < 1 or min(args.creates, args.events_per_profile) < 0:
        parser.error("need --step-factor > 1, --samples >= 1, --creates and --events-per-profile >= 0")
    if not 0 <= args.active_days <= WINDOW_DAYS or args.events_per_day < 1:
        parser.error(f"need 0 <= --active-days <= {WINDOW_DAYS} and --events-per-day >= 1")
    return Options(**{name: getattr(args, name) for name in Options.__dataclass_fields__})


def step_sizes(options: Options) -> list[int]:
    sizes = [options.start_profiles]
    while sizes[-1] < options.max_profiles:
        grown = max(sizes[-1] + 1, round(sizes[-1] * options.step_factor))
        sizes.append(min(options.max_profiles, grown))
    return sizes


# --- realistic shoppers --------------------------------------------------------------------


@dataclass(frozen=True)
class Shopper:
    """A profile document as the gateway stores it, its identity keys and its latest events."""

    profile: Document
    identity_keys: list[Document]
    events: list[TrackedEvent]
    email: Identity


class ShopperFactory:
    """Deterministic shoppers: ~1 KB of traits and six months of tracked history."""

    def __init__(self, options: Options, now: datetime) -> None:
        self.rng = random.Random(options.seed)
        self.now = now
        self.active_days = options.active_days
        self.events_per_day = options.events_per_day

    def event_id(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4).hex

    def identities(self, label: str, number: int) -> tuple[Identity, Identity]:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        email = normalise_identity(IdentityType.EMAIL, f"{first}.{last}.{label}{number}@example-shop.de")
        customer = normalise_identity(IdentityType.CUSTOMER_ID, f"C-{label.upper()}{number:08d}")
        return email, customer

    def traits(self) -> dict[str, Any]:
        rng = self.rng
        city, postal_code = rng.choice(CITIES)
        return {
            "firstName": rng.choice(FIRST_NAMES),
            "lastName": rng.choice(LAST_NAMES),
            "language": "de-DE",
            "country": "DE",
            "city": city,
            "birthYear": rng.randint(1950, 2006),
            "gender": rng.choice(("female", "male", "diverse", "unknown")),
            "signupChannel": rng.choice(("web", "app", "store")),
            "preferredStore": f"store-{city.lower()}-0{rng.randint(1, 4)}",
            "interests": rng.sample(CATEGORIES, 4),
            "favouriteBrands": rng.sample(("adidas", "puma", "nike", "asics", "salomon", "vaude"), 3),
            "sizes": {"shoe": str(rng.randint(36, 47)), "top": rng.choice("SML"), "bottom": "32/32"},
            "address": {
                "street": f"{rng.choice(('Torstraße', 'Hauptstraße', 'Gartenweg'))} {rng.randint(1, 200)}",
                "postalCode": postal_code,
                "city": city,
                "country": "DE",
            },
            "newsletter": {"topics": rng.sample(CATEGORIES, 2), "frequency": "weekly"},
            "loyalty": {
                "programme": "club",
                "memberSince": f"20{rng.randint(15, 25)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                "cardTier": rng.choice(("bronze", "silver", "gold")),
                "points": rng.randint(0, 20000),
            },
            "app": {"platform": rng.choice(("ios", "android")), "version": "6.12.0", "pushEnabled": True},
            "preferences": {
                "delivery": rng.choice(("home", "packstation", "store-pickup")),
                "payment": rng.choice(("paypal", "invoice", "card")),
                "communication": rng.choice(("email", "app-push", "none")),
                "colours": rng.sample(("black", "navy", "olive", "red", "white", "grey"), 3),
            },
            "marketing": {
                "acquisitionCampaign": f"spring-sale-{rng.randint(2019, 2026)}",
                "utmSource": rng.choice(("google", "newsletter", "instagram", "direct")),
                "segmentHint": rng.choice(("bargain-hunter", "brand-loyal", "occasional")),
            },
        }

    def consents(self) -> dict[str, Consent]:
        at = self.now - timedelta(days=self.rng.randint(30, 900))
        return {
            purpose: Consent(
                purpose=purpose,
                granted=self.rng.random() < 0.6,
                at=at,
                source=self.rng.choice(CONSENT_SOURCES),
            )
            for purpose in PURPOSES
        }

    def extensions(self) -> dict[str, ExtensionGrant]:
        if self.rng.random() >= 0.05:
            return {}
        return {
            "vip": ExtensionGrant(
                name="vip",
                at=self.now - timedelta(days=40),
                by="crm-sync",
                reason="Top 1% net spend 2026",
                expires_at=self.now + timedelta(days=325),
            )
        }

    def day(self) -> tuple[DayBucket, dict[str, OrderEntry]]:
        """One active day: its events by type, and the order placed that day, if any."""
        total = max(1, round(self.rng.expovariate(1 / self.events_per_day)))
        counts: dict[str, int] = {}
        for kind in self.rng.choices([k for k, _ in DAY_MIX], [w for _, w in DAY_MIX], k=total):
            counts[kind.value] = counts.get(kind.value, 0) + 1
        if self.rng.random() >= ORDER_DAY_SHARE:
            return DayBucket(counts=counts), {}
        gross = self.rng.randint(999, 24999)
        counts[EventType.ORDER_COMPLETED.value] = 1
        returned = gross // 2 if self.rng.random() < 0.15 else 0
        order = OrderEntry(total=gross, day=None, returned=returned)
        return DayBucket(counts=counts, orders=1, gross=gross, returned=returned), {
            order_key(f"O-{self.rng.randint(10**8, 10**9)}"): order
        }

    def history(self) -> Aggregates:
        """What tracking would have folded into the profile over the last six months."""
        offsets = sorted(self.rng.sample(range(WINDOW_DAYS), self.active_days), reverse=True)
        daily: dict[str, DayBucket] = {}
        orders: dict[str, OrderEntry] = {}
        for offset in offsets:
            day = (self.now - timedelta(days=offset)).date().isoformat()
            daily[day], placed = self.day()
            orders |= {key: entry.model_copy(update={"day": day}) for key, entry in placed.items()}
        counts: dict[str, int] = {}
        for bucket in daily.values():
            for kind, count in bucket.counts.items():
                counts[kind] = counts.get(kind, 0) + count
        events = sum(counts.values())
        first_seen = self.now - timedelta(days=self.rng.randint(WINDOW_DAYS, 1500))
        return Aggregates(
            counts=counts,
            channels={channel.value: self.rng.randint(0, events) for channel in Channel},
            categories={name: self.rng.randint(1, 200) for name in self.rng.sample(CATEGORIES, 10)},
            orders=len(orders),
            gross=sum(bucket.gross for bucket in daily.values()),
            returned=sum(bucket.returned for bucket in daily.values()),
            returned_orders=sum(1 for entry in orders.values() if entry.returned),
            first_seen=first_seen if daily else None,
            last_seen=self.now - timedelta(hours=self.rng.randint(1, 96)) if daily else None,
            last_order_at=self.now - timedelta(days=self.rng.randint(1, 60)) if orders else None,
            order_index=orders,
            daily=daily,
            recent_event_ids=tuple(self.event_id() for _ in range(min(RECENT_EVENT_IDS, events))),
        )

    def logged(self, event_id: str, profile_id: str) -> TrackedEvent:
        category = self.rng.choice(CATEGORIES)
        return TrackedEvent(
            id=event_id,
            type=EventType.PRODUCT_VIEW,
            at=self.now - timedelta(hours=self.rng.randint(1, 96)),
            channel=Channel.WEB,
            target=ProfileRef(id=profile_id),
            categories=((category, 1),),
            properties={"sku": f"SKU-{self.rng.randint(10000, 99999)}", "category": category},
        )

    def shopper(self, number: int, logged_events: int) -> Shopper:
        email, customer = self.identities("s", number)
        created = self.now - timedelta(days=self.rng.randint(WINDOW_DAYS, 1500))
        profile = Profile(
            id=new_profile_id(),
            identities=(email, customer),
            traits=self.traits(),
            consents=self.consents(),
            extensions=self.extensions(),
            aggregates=self.history(),
            version=self.rng.randint(2, 400),
            created_at=created,
            updated_at=self.now - timedelta(hours=self.rng.randint(1, 96)),
        )
        recent = profile.aggregates.recent_event_ids
        return Shopper(
            profile=profile_to_document(profile),
            identity_keys=[{"_id": i.key, "profileId": profile.id, "at": created} for i in (email, customer)],
            events=[self.logged(event_id, profile.id) for event_id in recent[len(recent) - logged_events :]],
            email=email,
        )

    def raw_event(self, email: Identity) -> dict[str, Any]:
        """A tracked event as ``track`` receives it from the API."""
        rng = self.rng
        category = rng.choice(CATEGORIES)
        sku = f"SKU-{rng.randint(10000, 99999)}"
        kind, properties = rng.choices(
            [
                ("page_view", {"url": f"https://shop.example/{category}", "title": category}),
                ("product_view", {"sku": sku, "category": category, "price": "59.95", "currency": "EUR"}),
                ("add_to_cart", {"sku": sku, "category": category, "price": "59.95", "quantity": 1}),
                (
                    "order_completed",
                    {
                        "order_id": f"O-{rng.randint(10**8, 10**9)}",
                        "total": "124.85",
                        "currency": "EUR",
                        "items": [
                            {"sku": sku, "category": category, "price": "59.95", "quantity": 2},
                            {"sku": "SKU-SOCKS", "category": "accessories", "price": "4.95", "quantity": 1},
                        ],
                    },
                ),
            ],
            [35, 45, 12, 8],
        )[0]
        return {
            "id": self.event_id(),
            "type": kind,
            "at": datetime.now(UTC),
            "channel": rng.choice(("web", "app")),
            "identity": {"type": "EMAIL", "value": email.value},
            "properties": properties,
        }


# --- the store -----------------------------------------------------------------------------


@dataclass
class Store:
    """The gateway's repositories, plus the partitioned collections the bulk loader fills."""

    repos: Repositories
    layout: Layout
    settings: Settings
    profiles: PartitionedCollection
    identity_keys: PartitionedCollection
    emails: list[Identity] = field(default_factory=list)
    created: int = 0

    @property
    def count(self) -> int:
        return len(self.emails) + self.created


async def open_store(database: Database, settings: Settings) -> Store:
    """Prepare the database exactly as the gateway does on the embedded store."""
    wanted = settings.layout
    repos = await prepare(database, wanted, event_retention_seconds=settings.event_retention_days * 86_400)
    layout = await load_layout(database, wanted)
    return Store(
        repos=repos,
        layout=layout,
        settings=settings,
        profiles=PartitionedCollection(database, "profiles", layout.partitions),
        identity_keys=PartitionedCollection(database, "identity_keys", layout.partitions),
    )


async def insert_routed(target: PartitionedCollection, documents: Iterable[Document]) -> None:
    """Bulk-insert ``documents`` into the partitions their ``_id`` routes them to."""
    batches: dict[str, tuple[Collection, list[Document]]] = {}
    for document in documents:
        collection = target.for_id(document["_id"])
        batches.setdefault(collection.name, (collection, []))[1].append(document)
    for collection, batch in batches.values():
        await collection.insert_many(batch)


async def grow(store: Store, factory: ShopperFactory, target: int, options: Options, deadline: float) -> bool:
    """Bulk-load shoppers until the store holds ``target`` profiles; False when out of time."""
    started = reported = time.monotonic()
    while store.count < target:
        if time.monotonic() > deadline:
            return False
        size = min(GROWTH_BATCH, target - store.count)
        batch = [factory.shopper(len(store.emails) + i, options.events_per_profile) for i in range(size)]
        await insert_routed(store.identity_keys, (key for s in batch for key in s.identity_keys))
        await insert_routed(store.profiles, (s.profile for s in batch))
        logged = [(event, str(s.profile["_id"])) for s in batch for event in s.events]
        await store.repos.events.append(logged, factory.now)
        store.emails.extend(s.email for s in batch)
        if time.monotonic() - reported > PROGRESS_SECONDS:
            reported = time.monotonic()
            progress(f"  {store.count:,}/{target:,} profiles after {reported - started:.0f} s")
    return True


# --- measurements --------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    profiles: int
    read_ms: list[float]
    track_ms: list[float]
    creates_per_second: float | None

    def meets(self, q: float) -> bool:
        return quantile(self.read_ms, q) < READ_TARGET_MS and quantile(self.track_ms, q) < TRACK_TARGET_MS

    def clearly_over(self) -> bool:
        """Both medians over their targets: a bigger store is only slower."""
        return quantile(self.read_ms, 0.5) > READ_TARGET_MS and quantile(self.track_ms, 0.5) > TRACK_TARGET_MS


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def timed(operation: Awaitable[None]) -> float:
    started = time.perf_counter_ns()
    await operation
    return (time.perf_counter_ns() - started) / 1e6


async def read(store: Store, email: Identity) -> None:
    """A checkout's read: the identity key by ``_id``, then the profile by ``_id``."""
    if await find_profile(store.repos, ProfileRef(identity=email)) is None:
        raise RuntimeError(f"{email.key} did not resolve to a profile")


async def track_one(store: Store, raw: dict[str, Any]) -> None:
    """One event through the tracking service, as the ``track`` mutation sends it."""
    result = await track(store.repos, [raw], store.settings.tracking_rules, datetime.now(UTC))
    if result.count(Status.ACCEPTED) != 1:
        raise RuntimeError(f"event {raw['id']} was not accepted: {result.results}")


async def create(store: Store, factory: ShopperFactory) -> None:
    """A new shopper through ``upsert_profile``: e-mail, customer id, traits, one consent."""
    email, customer = factory.identities("n", store.created)
    change = ProfileChange(
        ref=ProfileRef(identity=email),
        identities=(customer,),
        traits=factory.traits(),
        consents=(ConsentChange("email_marketing", True, "web-signup-form"),),
    )
    upserted = await upsert_profile(store.repos, change, store.settings.profile_rules, datetime.now(UTC))
    if not upserted.created:
        raise RuntimeError(f"{email.key} was not created")
    store.created += 1


async def measure(store: Store, factory: ShopperFactory, options: Options) -> Measured:
    profiles, rng = store.count, factory.rng
    for email in rng.sample(store.emails, min(WARM_UP, len(store.emails))):
        await read(store, email)
        await track_one(store, factory.raw_event(email))
    reads = [await timed(read(store, rng.choice(store.emails))) for _ in range(options.samples)]
    raws = [factory.raw_event(rng.choice(store.emails)) for _ in range(options.samples)]
    tracks = [await timed(track_one(store, raw)) for raw in raws]
    rate = None
    if options.creates:
        started = time.perf_counter()
        for _ in range(options.creates):
            await create(store, factory)
        rate = options.creates / (time.perf_counter() - started)
    return Measured(profiles, reads, tracks, rate)


# --- the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """One growth step: from ``start`` to ``end`` profiles in ``seconds``."""

    start: int
    end: int
    seconds: float

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2

    @property
    def per_profile(self) -> float:
        return self.seconds / max(1, self.end - self.start)


@dataclass
class Run:
    options: Options
    started: float = field(default_factory=time.monotonic)
    results: list[Measured] = field(default_factory=list)
    loads: list[Loaded] = field(default_factory=list)
    stopped: str = ""
    layout: Layout | None = None
    load_at_start: str = field(default_factory=lambda: load_average())

    @property
    def deadline(self) -> float:
        return self.started + self.options.budget_seconds


def loading_seconds(loads: Sequence[Loaded], following: int) -> float:
    """Creating a document costs a fixed part plus a part that grows with its partition.

    The per-profile cost is extrapolated linearly in the store's size from the last two
    steps; after one step it is taken as proportional to the size, which overestimates.
    """
    last = loads[-1]
    middle = (last.end + following) / 2
    if len(loads) < 2:
        per_profile = last.per_profile * middle / last.middle
    else:
        before = loads[-2]
        slope = max(0.0, (last.per_profile - before.per_profile) / (last.middle - before.middle))
        per_profile = last.per_profile + slope * (middle - last.middle)
    return per_profile * (following - last.end)


def stop_reason(run: Run, result: Measured, following: int | None, measure_seconds: float) -> str:
    """Why the run ends after this size, or "" to go on."""
    if result.clearly_over() and not run.options.keep_going:
        return f"both medians were over their targets at {result.profiles:,} profiles"
    if following is None:
        return f"reached --max-profiles {run.options.max_profiles:,}"
    needed = loading_seconds(run.loads, following) + measure_seconds * following / result.profiles
    left = run.deadline - time.monotonic()
    if needed > left:
        return (
            f"the next size ({following:,}) would take about {needed:.0f} s "
            f"and {max(0.0, left):.0f} s of the {run.options.budget_seconds:.0f} s budget were left"
        )
    return ""


async def run_steps(run: Run, store: Store, factory: ShopperFactory) -> None:
    sizes = step_sizes(run.options)
    for index, size in enumerate(sizes):
        progress(f"growing to {size:,} profiles")
        start, grow_started = store.count, time.monotonic()
        if not await grow(store, factory, size, run.options, run.deadline):
            run.stopped = f"the time budget ran out while growing to {size:,} (at {store.count:,})"
            return
        measure_started = time.monotonic()
        loaded = Loaded(start, store.count, measure_started - grow_started)
        run.loads.append(loaded)
        progress(f"measuring at {store.count:,} profiles (loading took {loaded.seconds:.0f} s)")
        result = await measure(store, factory, run.options)
        run.results.append(result)
        progress(row(result, loaded))
        following = sizes[index + 1] if index + 1 < len(sizes) else None
        run.stopped = stop_reason(run, result, following, time.monotonic() - measure_started)
        if run.stopped:
            return


async def benchmark(uri: str, options: Options) -> Run:
    run = Run(options)
    client = open_client(uri)
    try:
        settings = Settings()
        store = await open_store(client[settings.database], settings)
        run.layout = store.layout
        await run_steps(run, store, ShopperFactory(options, datetime.now(UTC)))
    finally:
        await client.close()
    return run


# --- output --------------------------------------------------------------------------------


def row(result: Measured, loaded: Loaded) -> str:
    cells = [
        f"{result.profiles:,}",
        f"{quantile(result.read_ms, 0.5):.2f}",
        f"{quantile(result.read_ms, 0.99):.2f}",
        f"{quantile(result.track_ms, 0.5):.2f}",
        f"{quantile(result.track_ms, 0.99):.2f}",
        "-" if result.creates_per_second is None else f"{result.creates_per_second:.1f}",
        f"{1 / loaded.per_profile:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def largest_meeting(results: Sequence[Measured], q: float) -> str:
    """The largest size up to which every measured size met both targets."""
    largest = None
    for result in results:
        if not result.meets(q):
            break
        largest = result.profiles
    return "none of the measured sizes" if largest is None else f"{largest:,}"


def document_sizes(options: Options) -> tuple[int, int]:
    """Median BSON size of a profile document, and of its event history alone."""
    factory = ShopperFactory(options, datetime.now(UTC))
    shoppers = [factory.shopper(number, 0).profile for number in range(25)]
    whole = statistics.median(len(bson.encode(document)) for document in shoppers)
    history = statistics.median(
        len(bson.encode({key: d[key] for key in ("aggregates", "daily", "recentEventIds")})) for d in shoppers
    )
    return round(whole), round(history)


def history_text(options: Options) -> str:
    if not options.active_days:
        return "no tracked history"
    return (
        f"a tracked history of {options.active_days} active days in the last {WINDOW_DAYS} "
        f"(~{options.events_per_day:g} events a day: daily buckets, lifetime counts, channels, "
        f"10 category affinities, an order index, up to {RECENT_EVENT_IDS} recent event ids)"
    )


def header(run: Run) -> list[str]:
    options, layout = run.options, run.layout or Layout()
    whole, history = document_sizes(options)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        "## Embedded store: profiles per store",
        "",
        f"- Run {when} on {platform.platform()} ({cpu_model()}), {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}, mongoeco {version('mongoeco')}, pymongo {version('pymongo')}; "
        f"load average {run.load_at_start} at the start, {load_average()} at the end (other work on the "
        "machine slows every figure).",
        "- Store: the embedded store as the gateway starts it (mongoeco SQLite engine in its own "
        f"process, over the wire); profiles and identity keys over {layout.partitions} partitions, "
        f"event log in segments of {layout.event_segment_size} documents.",
        "- Profiles were loaded in bulk (`insert_many` of `profile_to_document` documents and their "
        "identity keys, routed by `PartitionedCollection`), not through the service, which is too "
        f"slow to reach these sizes; {options.events_per_profile} events per profile went into the "
        "event log through `EventLog.append`.",
        f"- Each profile has ~1 KB of traits, two identities, four consents and {history_text(options)}: "
        f"median document {whole / 1024:.1f} KiB BSON, of which the history is {history / 1024:.1f} KiB.",
        f"- At each size: {options.samples} reads (`find_profile` by e-mail: identity key, then "
        f"profile), {options.samples} tracked events (`track` with one event, as the `track` mutation "
        f"calls it) and {options.creates} new profiles (`upsert_profile` with e-mail and customer id).",
        "",
        "| profiles | read p50 ms | read p99 ms | track p50 ms | track p99 ms | creates/s | bulk loaded/s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]


def load_average() -> str:
    """The one-minute load average, where the system has one."""
    with contextlib.suppress(OSError, AttributeError):
        return f"{os.getloadavg()[0]:.1f}"
    return "unknown"


def cpu_model() -> str:
    """The processor's name where the system tells it, else its architecture."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def render(run: Run) -> str:
    rows = (row(result, loaded) for result, loaded in zip(run.results, run.loads, strict=False))
    lines = [*header(run), *rows]
    lines += [
        "",
        f"Stopped: {run.stopped}.",
        "",
        f"At p50, the largest size meeting both targets (read p50 < {READ_TARGET_MS:g} ms, "
        f"track p50 < {TRACK_TARGET_MS:g} ms): {largest_meeting(run.results, 0.5)}",
        "",
        f"largest size meeting both targets (read p99 < {READ_TARGET_MS:g} ms, "
        f"track p99 < {TRACK_TARGET_MS:g} ms): {largest_meeting(run.results, 0.99)}",
        "",
        *target_lines(size_targets(run.results)),
    ]
    return "\n".join(lines) + "\n"


def size_targets(results: Sequence[Measured]) -> list[TargetResult]:
    """At p50 and at p99: the largest size that met both targets; met when one of the sizes did."""
    found = []
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        operation = f"largest store meeting read {name} and track {name}"
        target = f"read {name} < {READ_TARGET_MS:g} ms, track {name} < {TRACK_TARGET_MS:g} ms"
        met = bool(results) and results[0].meets(q)
        found.append(TargetResult(operation, largest_meeting(results, q), target, met))
    return found


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def with_embedded_store(body: Callable[[str], Run]) -> Run:
    """Run ``body`` against a fresh embedded store; the store and its files go away afterwards."""
    with (
        tempfile.TemporaryDirectory(prefix="profilegate-bench-") as data_dir,
        EmbeddedStore(data_dir=Path(data_dir), engine="sqlite") as store,
    ):
        assert store.uri is not None, "a started store has a URI"
        return body(store.uri)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM as on Ctrl+C
    try:
        run = with_embedded_store(lambda uri: asyncio.run(benchmark(uri, options)))
    except KeyboardInterrupt:
        progress("interrupted: the store was stopped and its data removed")
        return 130
    publish(render(run), options.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
