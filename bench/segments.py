"""Segment members and size pushed down to the store, against a Python scan of every profile.

Starts the embedded store as the gateway does (mongoeco's SQLite engine in a process of its
own, over the wire, the embedded layout from ``prepare``) in a temporary directory, makes sure
the profile partitions carry the indexes the segment query's prefilters use
(``PREFILTER_INDEXES``; the benchmark creates them before loading where the gateway has not),
and bulk-loads ``--profiles`` generated shoppers into it: ``profile_to_document`` documents
and their ``checkout_document``, routed to their partitions by ``insert_routed``. Loading is
timed and reported, but is no part of the targets.

Each shopper has ~1 KB of traits (a country among DE, AT, CH, FR and NL, a birth year,
interests, newsletter flags, ...), an e-mail and a customer id, four consents, for a few an
extension (``employee``, ``vip``, some of them expired, ``no-reward``), and daily buckets over
the last 400 days built directly (activity, recency and order rates differ per shopper;
orders with returns and cancellations), with the lifetime figures they add up to.

Three rules are parsed with ``parse_rule`` against the gateway's settings (a trait test, a
windowed spend test and a mixed rule). For each, with one ``now`` for the whole run:

- the first page of 50 members, pushed down: ``segment_members`` (``matching_page`` with 51
  over every partition, as the ``members`` field asks for it), ``--repeat`` times;
- the size, pushed down: ``segment_size`` (``count_matching``), ``--repeat`` times;
- the Python scan: every profile read (the query ``ProfileRepository.matching`` sends, every
  partition, batches of 500), built with ``profile_from_document`` and tested with ``holds``,
  ``--scan-repeat`` times, its time split into reading, building and testing.

The pushed-down size must equal the scan's count, and the first page the first 50 of the
scan's members in id order; otherwise the run fails. The floors: ``count_documents({})`` and
``count_documents({"mergedInto": None})`` over every partition. Prints a Markdown section to
stdout and writes nothing unless ``--write PATH`` is given; progress goes to stderr. The store
and its files are removed at the end, also on errors, Ctrl+C and SIGTERM.

    .venv/bin/python -m bench.segments [--profiles 20000] [--repeat 5] [--write BENCHMARKS.md]
"""

import argparse
import asyncio
import contextlib
import math
import platform
import random
import shlex
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import bson
from pymongo import IndexModel

from bench.checkout import milliseconds, verdict
from bench.gateway import BenchmarkError, progress
from bench.machine import load_average, machine
from bench.store_scale import CATEGORIES, DAY_MIX, PROGRESS_SECONDS, Store, insert_routed, open_store
from bench.store_scale import ShopperFactory as StoreScaleShoppers
from bench.store_scale import parse_options as store_scale_options
from profilegate.domain.aggregates import RECENT_EVENT_IDS, Aggregates, DayBucket, OrderEntry
from profilegate.domain.events import Channel, EventType
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.profiles import Profile
from profilegate.domain.segment_parser import RuleContext, parse_rule
from profilegate.domain.segment_predicate import holds
from profilegate.domain.segments import Segment
from profilegate.embedded import EmbeddedStore
from profilegate.service.segments import segment_members, segment_size
from profilegate.settings import Settings
from profilegate.storage.documents import Document
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.profiles import checkout_document, profile_from_document, profile_to_document
from profilegate.storage.segment_query import PREFILTER_INDEXES
from profilegate.storage.store import open_client

PAGE = 50
SHARE_TARGET = 0.05  # the first page of members costs less than this share of the Python scan
SCAN_BATCH = 500  # what ProfileRepository.matching asks the store for at a time
LOAD_BATCH = 2000  # profiles generated and inserted per round (one insert_many per partition)
HISTORY_DAYS = 400
EXTENSIONS = ("employee", "vip", "no-reward")
RULES = (
    ("trait test", "traits-at", 'traits.country = "AT"'),
    ("windowed spend test", "spend-90d", "net_spend(last 90d) > 200.00"),
    (
        "mixed rule",
        "mixed-dach",
        'orders(last 365d) >= 3 and net_spend(last 365d) > 500.00 and consent("email_marketing") '
        'and not has_extension("employee") and traits.country in ["DE", "AT", "CH"]',
    ),
)

COUNTRIES = {
    "DE": (0.45, "de-DE", (("Berlin", "10119"), ("Hamburg", "20095"), ("München", "80331"))),
    "AT": (0.15, "de-AT", (("Wien", "1010"), ("Graz", "8010"), ("Linz", "4020"))),
    "CH": (0.12, "de-CH", (("Zürich", "8001"), ("Bern", "3011"), ("Basel", "4051"))),
    "FR": (0.16, "fr-FR", (("Paris", "75001"), ("Lyon", "69001"), ("Strasbourg", "67000"))),
    "NL": (0.12, "nl-NL", (("Amsterdam", "1012"), ("Rotterdam", "3011"), ("Utrecht", "3511"))),
}
NEVER_TRACKED = 0.07  # shoppers with a profile (sign-up, store) but no tracked event
MEDIAN_ACTIVE_DAYS = 18  # active days in the last HISTORY_DAYS: log-normal around this
EVENTS_PER_DAY = 6.0
# When a shopper was last active: (share, fewest days ago, most days ago).
RECENCY = ((0.45, 0, 14), (0.25, 15, 90), (0.30, 91, HISTORY_DAYS - 1))
ORDER_SHARES = ((0.0, 0.25), (0.04, 0.25), (0.08, 0.25), (0.15, 0.15), (0.30, 0.10))  # per active day
MEDIAN_ORDER = 6500  # minor units; orders are log-normal around it
RETURN_SHARE = 0.20
CANCEL_SHARE = 0.03
CHANNEL_SHARES = ((Channel.WEB, 0.55), (Channel.APP, 0.30), (Channel.STORE, 0.10), (Channel.EMAIL, 0.05))


# --- options -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    profiles: int
    repeat: int
    scan_repeat: int
    seed: int
    write: Path | None


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.segments",
        description="Segment members and size pushed down to the store, against a Python scan.",
    )
    add = parser.add_argument
    add("--profiles", type=int, default=20_000, help="generated profiles to load (default 20000)")
    add("--repeat", type=int, default=5, help="timed runs of each pushed-down query (default 5)")
    add("--scan-repeat", type=int, default=2, help="timed Python scans per rule (default 2)")
    add("--seed", type=int, default=1, help="seed of the generated profiles (default 1)")
    add("--write", type=Path, default=None, help="also append the section to this file")
    args = parser.parse_args(argv)
    if args.profiles < PAGE + 1 or min(args.repeat, args.scan_repeat) < 1:
        parser.error(f"need --profiles > {PAGE} and --repeat, --scan-repeat >= 1")
    return Options(**{name: getattr(args, name) for name in Options.__dataclass_fields__})


# --- shoppers ----------------------------------------------------------------------------


def weighted[T](rng: random.Random, pairs: Sequence[tuple[T, float]]) -> T:
    return rng.choices([value for value, _ in pairs], [share for _, share in pairs])[0]


@dataclass
class _Day:
    """A day bucket while it is built."""

    counts: Counter[str] = field(default_factory=Counter)
    orders: int = 0
    gross: int = 0
    returned: int = 0
    cancelled: int = 0
    order_returns: int = 0

    def frozen(self) -> DayBucket:
        return DayBucket(
            counts=dict(self.counts),
            orders=self.orders,
            gross=self.gross,
            returned=self.returned,
            cancelled=self.cancelled,
            order_returns=self.order_returns,
        )


class ShopperFactory(StoreScaleShoppers):
    """``store_scale``'s shoppers (traits, identities, consents), from five countries, with a
    few extensions and 400 days of history that differs in activity, recency and orders."""

    def __init__(self, seed: int, now: datetime) -> None:
        super().__init__(store_scale_options(["--seed", str(seed)]), now)
        self.today = now.date()

    def traits(self) -> dict[str, Any]:
        rng = self.rng
        traits = super().traits()
        country = weighted(rng, [(code, share) for code, (share, _, _) in COUNTRIES.items()])
        _, language, cities = COUNTRIES[country]
        city, postal_code = rng.choice(cities)
        subscribed = rng.random() < 0.45
        traits |= {
            "country": country,
            "language": language,
            "city": city,
            "newsletter": {
                "subscribed": subscribed,
                "doubleOptIn": subscribed and rng.random() < 0.8,
                "topics": traits["newsletter"]["topics"],
                "frequency": rng.choice(("weekly", "monthly")),
            },
        }
        traits["address"] |= {"postalCode": postal_code, "city": city, "country": country}
        return traits

    def extensions(self) -> dict[str, ExtensionGrant]:
        rng, now = self.rng, self.now
        grants: dict[str, ExtensionGrant] = {}
        if rng.random() < 0.02:
            grants["employee"] = ExtensionGrant(
                name="employee", at=now - timedelta(days=300), by="hr-sync", reason="staff"
            )
        if rng.random() < 0.05:
            expires = now + timedelta(days=rng.randint(-60, 300))  # about a sixth of them expired
            grants["vip"] = ExtensionGrant(
                name="vip",
                at=now - timedelta(days=200),
                by="crm-sync",
                reason="top spender",
                expires_at=expires,
            )
        if rng.random() < 0.01:
            grants["no-reward"] = ExtensionGrant(
                name="no-reward", at=now - timedelta(days=90), by="fraud-team", reason="abuse"
            )
        return grants

    def moment(self, offset: int) -> datetime:
        """A time on the day ``offset`` days ago, never after now."""
        midnight = datetime.combine(self.today - timedelta(days=offset), datetime.min.time(), UTC)
        return min(self.now, midnight + timedelta(seconds=self.rng.uniform(0, 86_399)))

    def active_offsets(self) -> list[int]:
        """The days ago (0 is today) on which the shopper had events."""
        rng = self.rng
        if rng.random() < NEVER_TRACKED:
            return []
        fewest, most = weighted(rng, [((low, high), share) for share, low, high in RECENCY])
        last = rng.randint(fewest, most)
        wanted = max(1, round(rng.lognormvariate(math.log(MEDIAN_ACTIVE_DAYS), 1.0)))
        days = min(wanted, HISTORY_DAYS - last)
        first = rng.randint(last + days - 1, HISTORY_DAYS - 1)
        return [last, *rng.sample(range(last + 1, first + 1), days - 1)]

    def history(self) -> Aggregates:
        """What tracking would have folded into the profile over the last 400 days."""
        rng = self.rng
        order_share = weighted(rng, ORDER_SHARES)
        kinds, shares = [kind.value for kind, _ in DAY_MIX], [share for _, share in DAY_MIX]
        days: dict[int, _Day] = {}
        orders: dict[str, OrderEntry] = {}
        for offset in self.active_offsets():
            day = days.setdefault(offset, _Day())
            day.counts.update(
                rng.choices(kinds, shares, k=max(1, round(rng.expovariate(1 / EVENTS_PER_DAY))))
            )
            if rng.random() < order_share:
                orders |= self.order(offset, days)
        daily = {(self.today - timedelta(days=o)).isoformat(): d.frozen() for o, d in sorted(days.items())}
        counts: Counter[str] = Counter()
        for bucket in daily.values():
            counts.update(bucket.counts)
        events = counts.total()
        newest_order = min((offset for offset, day in days.items() if day.orders), default=None)
        return Aggregates(
            counts=dict(counts),
            channels={c.value: round(events * share) for c, share in CHANNEL_SHARES if round(events * share)},
            categories={name: rng.randint(1, 60) for name in rng.sample(CATEGORIES, min(events, 8))},
            orders=sum(day.orders for day in days.values()),
            gross=sum(day.gross for day in days.values()),
            returned=sum(day.returned for day in days.values()),
            cancelled=sum(day.cancelled for day in days.values()),
            cancelled_orders=sum(1 for entry in orders.values() if entry.cancelled),
            returned_orders=sum(1 for entry in orders.values() if entry.returned),
            first_seen=self.moment(max(days)) if days else None,
            last_seen=self.moment(min(days)) if days else None,
            last_order_at=None if newest_order is None else self.moment(newest_order),
            order_index=orders,
            daily=daily,
            recent_event_ids=tuple(rng.randbytes(6).hex() for _ in range(min(RECENT_EVENT_IDS, events))),
        )

    def order(self, offset: int, days: dict[int, _Day]) -> dict[str, OrderEntry]:
        """An order placed ``offset`` days ago; some are returned (in part) later, some cancelled."""
        rng = self.rng
        placed = days[offset]
        gross = min(200_000, max(500, round(rng.lognormvariate(math.log(MEDIAN_ORDER), 0.7))))
        placed.counts.update((EventType.CHECKOUT_STARTED.value, EventType.ORDER_COMPLETED.value))
        placed.orders += 1
        placed.gross += gross
        returned, cancelled = 0, False
        roll, returned_on = rng.random(), offset - rng.randint(5, 30)
        if roll < RETURN_SHARE and returned_on >= 0:
            returned = round(gross * rng.choice((1.0, 0.5, 0.3)))
            placed.order_returns += returned
            back = days.setdefault(returned_on, _Day())  # the return is an event on its own day
            back.returned += returned
            back.counts[EventType.ORDER_RETURNED.value] += 1
        elif roll < RETURN_SHARE + CANCEL_SHARE:
            cancelled = True
            placed.cancelled += gross
            placed.counts[EventType.ORDER_CANCELLED.value] += 1
        day = (self.today - timedelta(days=offset)).isoformat()
        order_id = f"O-{rng.randint(10**8, 10**9)}"
        return {order_id: OrderEntry(total=gross, day=day, cancelled=cancelled, returned=returned)}

    def profile(self, number: int) -> Profile:
        email, customer = self.identities("g", number)
        aggregates = self.history()
        seen = aggregates.first_seen or self.now - timedelta(days=self.rng.randint(1, HISTORY_DAYS))
        created = seen - timedelta(days=self.rng.randint(0, 600))
        return Profile(
            id=self.event_id(),
            identities=(email, customer),
            traits=self.traits(),
            consents=self.consents(),
            extensions=self.extensions(),
            aggregates=aggregates,
            version=self.rng.randint(2, 400),
            created_at=created,
            updated_at=aggregates.last_seen or created,
        )


# --- the store ---------------------------------------------------------------------------


@dataclass
class Loaded:
    profiles: int = 0
    generate_seconds: float = 0.0
    insert_seconds: float = 0.0
    sizes: list[int] = field(default_factory=list)  # BSON bytes of each profile document
    checkout_sizes: list[int] = field(default_factory=list)
    active_days: list[int] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)
    countries: Counter[str] = field(default_factory=Counter)
    extensions: Counter[str] = field(default_factory=Counter)


async def prefilter_indexes(store: Store) -> bool:
    """Make sure every profile partition has the ``PREFILTER_INDEXES``; whether ``prepare``
    (the gateway) had created them all already."""
    wanted = [((name, direction),) for name, direction in PREFILTER_INDEXES]
    complete = True
    for partition in store.profiles.all():
        present = {tuple(map(tuple, spec["key"])) for spec in (await partition.index_information()).values()}
        missing = [keys for keys in wanted if keys not in present]
        if missing:
            complete = False
            await partition.create_indexes([IndexModel(list(keys)) for keys in missing])
    return complete


async def load(store: Store, checkout: PartitionedCollection, factory: ShopperFactory, count: int) -> Loaded:
    """Generate ``count`` profiles and insert them, with their checkout documents, in rounds."""
    loaded = Loaded()
    reported = time.monotonic()
    while loaded.profiles < count:
        started = time.perf_counter()
        batch = [
            factory.profile(loaded.profiles + i) for i in range(min(LOAD_BATCH, count - loaded.profiles))
        ]
        documents = [profile_to_document(profile) for profile in batch]
        checkouts = [checkout_document(profile) for profile in batch]
        inserting = time.perf_counter()
        await insert_routed(store.profiles, documents)
        await insert_routed(checkout, checkouts)
        loaded.insert_seconds += time.perf_counter() - inserting
        loaded.generate_seconds += inserting - started
        loaded.profiles += len(batch)
        loaded.sizes += [len(bson.encode(document)) for document in documents]
        loaded.checkout_sizes += [len(bson.encode(document)) for document in checkouts]
        loaded.active_days += [len(profile.aggregates.daily) for profile in batch]
        loaded.orders += [profile.aggregates.orders for profile in batch]
        loaded.countries.update(profile.traits["country"] for profile in batch)
        loaded.extensions.update(name for profile in batch for name in profile.extensions)
        if time.monotonic() - reported > PROGRESS_SECONDS or loaded.profiles == count:
            reported = time.monotonic()
            progress(
                f"  {loaded.profiles:,}/{count:,} profiles, {loaded.insert_seconds:.0f} s inserting "
                f"({loaded.profiles / loaded.insert_seconds:.1f} profiles/s)"
            )
    return loaded


# --- measurements --------------------------------------------------------------------------


async def timed[T](operation: Awaitable[T]) -> tuple[float, T]:
    started = time.perf_counter_ns()
    result = await operation
    return (time.perf_counter_ns() - started) / 1e6, result


@dataclass(frozen=True)
class Scan:
    """One Python scan: milliseconds reading, building profiles and testing them; the members."""

    read_ms: float
    build_ms: float
    test_ms: float
    members: list[str]
    profiles: int

    @property
    def total_ms(self) -> float:
        return self.read_ms + self.build_ms + self.test_ms


async def python_scan(store: Store, segment: Segment, now: datetime) -> Scan:
    """Every profile, as ``ProfileRepository.matching({})`` reads them, tested with ``holds``."""
    rules = {segment.key: segment.rule}
    read = build = test = 0
    members: list[str] = []
    profiles = 0
    for partition in store.profiles.all():
        cursor = partition.find({"$and": [{}, {"mergedInto": None}]}).batch_size(SCAN_BATCH)
        while True:
            started = time.perf_counter_ns()
            try:
                document = await anext(cursor)
            except StopAsyncIteration:
                read += time.perf_counter_ns() - started
                break
            built = time.perf_counter_ns()
            profile = profile_from_document(document)
            tested = time.perf_counter_ns()
            if holds(segment.rule, profile, now, rules):
                members.append(profile.id)
            done = time.perf_counter_ns()
            read, build, test = read + built - started, build + tested - built, test + done - tested
            profiles += 1
    return Scan(read / 1e6, build / 1e6, test / 1e6, sorted(members), profiles)


@dataclass
class Measured:
    title: str
    segment: Segment
    page_ms: list[float] = field(default_factory=list)
    size_ms: list[float] = field(default_factory=list)
    scans: list[Scan] = field(default_factory=list)
    size: int = 0
    page: list[str] = field(default_factory=list)

    @property
    def members(self) -> int:
        return len(self.scans[0].members)

    def scan_ms(self, part: Callable[[Scan], float] = lambda scan: scan.total_ms) -> float:
        return statistics.median(part(scan) for scan in self.scans)


def check(measured: Measured) -> None:
    """The pushed-down answers must be the Python scan's: the same count, the same first page."""
    expected = measured.scans[0].members
    for scan in measured.scans[1:]:
        if scan.members != expected:
            raise BenchmarkError(f"{measured.segment.key}: two Python scans found different members")
    if measured.size != len(expected):
        raise BenchmarkError(
            f"{measured.segment.key}: segment_size says {measured.size:,}, the Python scan found "
            f"{len(expected):,}"
        )
    if measured.page != expected[:PAGE]:
        extra = sorted(set(measured.page) - set(expected[:PAGE]))[:3]
        missing = sorted(set(expected[:PAGE]) - set(measured.page))[:3]
        raise BenchmarkError(
            f"{measured.segment.key}: the first page differs from the Python scan's first {PAGE} "
            f"members (only pushed down: {extra}; only in the scan: {missing}; "
            f"{len(measured.page)} against {len(expected[:PAGE])} ids)"
        )


async def pushed_down(store: Store, measured: Measured, now: datetime) -> None:
    """One first page and one size, timed, as the ``members`` and ``size`` fields ask."""
    segments = [measured.segment]
    page_ms, (page, _) = await timed(
        segment_members(store.repos, measured.segment, segments, now, first=PAGE, after=None)
    )
    size_ms, size = await timed(segment_size(store.repos, measured.segment, segments, now))
    measured.page_ms.append(page_ms)
    measured.size_ms.append(size_ms)
    measured.page, measured.size = [profile.id for profile in page], size


@dataclass(frozen=True)
class Floors:
    count_all_ms: list[float]
    count_live_ms: list[float]


async def floors(store: Store, repeat: int) -> Floors:
    """Counting every document, without and with a filter the store tests on each one."""

    async def count(query: Document) -> int:
        return sum([await partition.count_documents(query) for partition in store.profiles.all()])

    everything = [(await timed(count({})))[0] for _ in range(repeat)]
    live = [(await timed(count({"mergedInto": None})))[0] for _ in range(repeat)]
    return Floors(everything, live)


def segments(settings: Settings, now: datetime) -> list[tuple[str, Segment]]:
    """The three rules, parsed as ``saveSegment`` parses them."""
    rules = settings.segment_rules
    context = RuleContext(
        currencies=rules.currencies,
        known_extensions=frozenset(EXTENSIONS),
        consent_purposes=rules.consent_purposes,
        max_window_days=rules.kept_days,
    )
    return [
        (
            title,
            Segment(
                key=key,
                name=title,
                rule_text=text,
                rule=parse_rule(text, context),
                updated_at=now,
                updated_by="segments-benchmark",
            ),
        )
        for title, key, text in RULES
    ]


# --- the run -------------------------------------------------------------------------------


@dataclass
class Run:
    options: Options
    command: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    partitions: int = 0
    gateway_indexes: bool = False
    loaded: Loaded = field(default_factory=Loaded)
    results: list[Measured] = field(default_factory=list)
    floors: Floors | None = None
    load_at_start: str = field(default_factory=load_average)
    load_at_end: str = "unknown"


async def benchmark(uri: str, run: Run) -> None:
    options, now = run.options, run.started
    client = open_client(uri)
    try:
        settings = Settings()
        database = client[settings.database]
        store = await open_store(database, settings)
        run.partitions = store.layout.partitions
        run.gateway_indexes = await prefilter_indexes(store)
        if not run.gateway_indexes:
            progress(
                "the gateway does not create PREFILTER_INDEXES: created them on every profiles partition"
            )
        checkout = PartitionedCollection(database, "profile_checkout", store.layout.partitions)
        progress(f"generating and loading {options.profiles:,} profiles")
        run.loaded = await load(store, checkout, ShopperFactory(options.seed, now), options.profiles)
        run.results = [Measured(title, segment) for title, segment in segments(settings, now)]
        progress("warming up: one first page and one size per rule, not counted")
        for measured in run.results:
            await pushed_down(store, measured, now)
            measured.page_ms.clear()
            measured.size_ms.clear()
        progress(f"pushed down: {options.repeat} first pages and sizes per rule")
        for _ in range(options.repeat):
            for measured in run.results:
                await pushed_down(store, measured, now)
        for measured in run.results:
            progress(f"{measured.title}: {len(measured.page)} on the first page, size {measured.size:,}")
        progress("floors: counting every document")
        run.floors = await floors(store, options.repeat)
        for measured in run.results:
            for number in range(options.scan_repeat):
                progress(f"Python scan {number + 1}/{options.scan_repeat}: {measured.title}")
                measured.scans.append(await python_scan(store, measured.segment, now))
            check(measured)
            progress(
                f"  {measured.members:,} members, scan {measured.scan_ms():,.0f} ms; first page "
                f"{statistics.median(measured.page_ms):,.1f} ms, "
                f"size {statistics.median(measured.size_ms):,.1f} ms"
            )
        run.load_at_end = load_average()
    finally:
        await client.close()


# --- output --------------------------------------------------------------------------------


def share(part: float, whole: float) -> str:
    value = part / whole
    return f"{value:.2%}" if value < 0.1 else f"{value:.0%}"


def kib(size: float) -> str:
    return f"{size / 1024:.1f} KiB"


def quantiles(values: Sequence[int]) -> tuple[float, float, float]:
    """Median, 90th and 99th percentile."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), cuts[89], cuts[98]


def loaded_text(run: Run) -> list[str]:
    loaded, options = run.loaded, run.options
    size, size90, size99 = quantiles(loaded.sizes)
    days, days90, _ = quantiles(loaded.active_days)
    tracked = sum(1 for days in loaded.active_days if days)
    ordered = sum(1 for orders in loaded.orders if orders)
    countries = ", ".join(f"{code} {loaded.countries[code] / loaded.profiles:.0%}" for code in COUNTRIES)
    extensions = ", ".join(f"{name} {loaded.extensions[name]:,}" for name in EXTENSIONS)
    rate = loaded.profiles / loaded.insert_seconds
    return [
        f"- Profiles: {loaded.profiles:,} generated shoppers (seed {options.seed}): ~1 KB of traits "
        f"(country {countries}; birth year, interests, newsletter flags, address, preferences), an "
        "e-mail and a customer id, four consents (60% granted each), extensions on a few "
        f"({extensions}; a sixth of the vip grants expired) and daily buckets over the last "
        f"{HISTORY_DAYS} days, built directly with the lifetime figures they add up to: {tracked:,} "
        f"shoppers tracked, on {days:.0f} days (median; p90 {days90:.0f}), {ordered:,} with orders "
        f"({sum(loaded.orders):,} orders, a fifth returned in part or whole, 3% cancelled). Profile "
        f"documents: median {kib(size)} BSON, p90 {kib(size90)}, p99 {kib(size99)}; checkout documents "
        f"median {kib(statistics.median(loaded.checkout_sizes))}.",
        f"- Loading (not part of the targets): `profile_to_document` and `checkout_document` documents "
        f"`insert_many`-ed by `insert_routed` into the partitions their `_id` routes them to, "
        f"{LOAD_BATCH:,} profiles a round: {loaded.insert_seconds:,.0f} s inserting "
        f"({rate:,.1f} profiles/s), {loaded.generate_seconds:,.0f} s generating. Identity keys and the "
        "event log were not loaded: no segment query reads them.",
    ]


def rule_table(measured: Measured, profiles: int) -> list[str]:
    scan = measured.scan_ms()
    rows = [
        (f"first page of {PAGE} members, pushed down (`segment_members`)", measured.page_ms),
        ("size, pushed down (`segment_size`)", measured.size_ms),
    ]
    lines = [
        f"### {measured.title.capitalize()}: `{measured.segment.rule_text}`",
        "",
        f"Members: {measured.members:,} of {profiles:,} profiles ({measured.members / profiles:.1%}). "
        f"The pushed-down size equals the Python scan's count, and the first page its first {PAGE} "
        "members in id order.",
        "",
        "| query | median ms | min ms | median / Python scan |",
        "|---|---:|---:|---:|",
    ]
    for name, values in rows:
        median = statistics.median(values)
        lines.append(
            f"| {name} | {milliseconds(median)} | {milliseconds(min(values))} | {share(median, scan)} |"
        )
    lines.append(
        f"| Python scan: read every profile, `profile_from_document`, `holds` | {milliseconds(scan)} | "
        f"{milliseconds(min(s.total_ms for s in measured.scans))} | 100% |"
    )
    parts: list[tuple[str, Callable[[Scan], float]]] = [
        ("of which reading (`find`, all partitions, batches of 500)", lambda s: s.read_ms),
        ("of which `profile_from_document`", lambda s: s.build_ms),
        ("of which `holds`", lambda s: s.test_ms),
    ]
    for name, part in parts:
        median = measured.scan_ms(part)
        smallest = min(part(s) for s in measured.scans)
        lines.append(
            f"| - {name} | {milliseconds(median)} | {milliseconds(smallest)} | {share(median, scan)} |"
        )
    return [*lines, ""]


def targets_text(run: Run) -> list[str]:
    lines = [
        f"Target (the first page of members costs less than {SHARE_TARGET:.0%} of the full Python scan; "
        "medians):",
        "",
    ]
    for measured in run.results:
        page, scan = statistics.median(measured.page_ms), measured.scan_ms()
        lines.append(
            f"- {measured.title}: **{verdict(page / scan < SHARE_TARGET)}**, {share(page, scan)} "
            f"({milliseconds(page)} ms against {milliseconds(scan)} ms); the size costs "
            f"{share(statistics.median(measured.size_ms), scan)}."
        )
    return lines


def render(run: Run) -> str:
    when = run.started.strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{name} {version(name)}" for name in ("mongoeco", "pymongo", "pydantic"))
    indexes = ", ".join(f"`{name}`" for name, _ in PREFILTER_INDEXES)
    made = (
        "created by the gateway's `prepare`"
        if run.gateway_indexes
        else "created by the benchmark before loading: the gateway's `prepare` (`ensure_indexes`) does not "
        "create them yet"
    )
    lines = [
        "## Segments: members pushed down against a Python scan",
        "",
        f"- Run {when} on {machine()}; Python {platform.python_version()}, {versions}; load average "
        f"{run.load_at_start} at the start, {run.load_at_end} at the end (other work on the machine slows "
        "every figure).",
        f"- Command: `{run.command}`",
        "- Store: the embedded store as the gateway starts it (mongoeco SQLite engine in its own process, "
        f"over the wire, in a fresh directory), prepared with the embedded layout: {run.partitions} "
        f"partitions. The prefilter indexes (`PREFILTER_INDEXES`: {indexes}) on every profiles partition "
        f"were {made}.",
        *loaded_text(run),
        "- Measured, with one `now` for the whole run, after one uncounted first page and size per rule: "
        f"{run.options.repeat} first pages (`segment_members` with `first: {PAGE}`: `matching_page` asks "
        f"every partition for its first {PAGE + 1} matches in id order) and sizes (`segment_size`: "
        "`count_documents` on every partition) per rule, rounds alternating between the rules; then "
        f"{run.options.scan_repeat} Python scan(s) per rule: every profile read as "
        "`ProfileRepository.matching({})` reads them (`find` on every partition, batches of 500), built "
        "with `profile_from_document` and tested with `holds`. The client and the store share the "
        "machine.",
        "",
        *(line for measured in run.results for line in rule_table(measured, run.loaded.profiles)),
        *targets_text(run),
        "",
        *note(run),
    ]
    return "\n".join(lines) + "\n"


def note(run: Run) -> list[str]:
    floors = run.floors
    assert floors is not None, "the floors are measured before the report"
    everything, live = statistics.median(floors.count_all_ms), statistics.median(floors.count_live_ms)
    profiles = run.loaded.profiles
    reading = statistics.median(m.scan_ms(lambda s: s.read_ms) for m in run.results)
    building = statistics.median(m.scan_ms(lambda s: s.build_ms) for m in run.results)
    return [
        "What the cost is, measured in the same run (medians): `count_documents({})` over every "
        f'partition takes {milliseconds(everything)} ms; `count_documents({{"mergedInto": None}})`, '
        f"which the store tests on each document, {milliseconds(live)} ms "
        f"({live * 1000 / profiles:,.0f} µs per profile). The Python scan's reading takes "
        f"{milliseconds(reading)} ms ({reading * 1000 / profiles:,.0f} µs per profile) and "
        f"`profile_from_document` {milliseconds(building)} ms ({building * 1000 / profiles:,.0f} µs).",
    ]


def command_line(argv: Sequence[str] | None) -> str:
    arguments = list(sys.argv[1:] if argv is None else argv)
    return shlex.join([".venv/bin/python", "-m", "bench.segments", *arguments])


@contextlib.contextmanager
def embedded_store() -> Iterator[str]:
    """A fresh embedded store (SQLite engine, its own process); stopped and removed afterwards."""
    with (
        tempfile.TemporaryDirectory(prefix="profilegate-segments-") as data_dir,
        EmbeddedStore(data_dir=Path(data_dir), engine="sqlite") as store,
    ):
        assert store.uri is not None, "a started store has a URI"
        yield store.uri


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    run = Run(options, command_line(argv))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM as on Ctrl+C
    try:
        with embedded_store() as uri:
            asyncio.run(benchmark(uri, run))
    except KeyboardInterrupt:
        progress("interrupted: the store was stopped and its data removed")
        return 130
    except BenchmarkError as error:
        progress(f"error: {error}")
        return 1
    section = render(run)
    sys.stdout.write(section)
    if options.write is not None:
        with options.write.open("a", encoding="utf-8") as target:
            target.write("\n" + section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
