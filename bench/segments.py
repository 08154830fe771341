"""Segment members and size pushed down to the store, against a Python scan of every profile.

Starts the embedded store as the gateway does (mongoeco's SQLite engine in a process of its
own, over the wire) in a temporary directory and prepares its database with ``prepare`` and
the embedded layout; the profile partitions get the indexes the segment query's prefilters use
(``PREFILTER_INDEXES``) before loading, by the benchmark where the gateway did not create them.

``--profiles`` generated shoppers are then bulk-loaded, timed but no part of the targets:
``profile_to_document`` documents, their ``checkout_document`` and the three rules' membership
records (``member_document``, as the gateway's backfill writes them), routed to their
partitions. By default they go in while the store is stopped, straight into its
SQLite file through mongoeco's own client on the engine the store runs (its batch insert):
over the wire the store inserts one document at a time and reads every document already in
the collection for each, so a load there grows with the square of its size. A few inserts
over the wire, into a new collection and into a copy of one partition's worth of profiles in
another database, tell the report what that would have cost. ``--loader wire`` loads through
the running store instead.

Each shopper has ~1 KB of traits (a country among DE, AT, CH, FR and NL, a birth year,
interests, newsletter flags, ...), an e-mail and a customer id, four consents, for a few an
extension (``employee``, ``vip``, some of them expired, ``no-reward``), and daily buckets over
the last 400 days built directly (activity, recency and order rates differ per shopper;
orders with returns and cancellations), with the lifetime figures they add up to.

The store is started again, as after a restart of the gateway, every profile is counted once
to warm it, and three rules parsed with ``parse_rule`` against the gateway's settings (a trait
test, a windowed spend test and a mixed rule) are measured with one ``now``:

- the first page of 50 members as the ``members`` field reads it: ``segment_members`` (from the
  membership records: one ``_id`` range per partition, then the page's profiles by ``_id``), its
  store commands counted, ``--repeat`` times; and once the first page by the compiled rule
  (``matching_page`` with 51 over every partition: the path while a saved segment is backfilled);
- the size, pushed down: ``segment_size`` (``count_matching``), ``--repeat`` times;
- what the store spends: each rule's prefilter alone, counted as the size is; the trait test in
  the plain query language, counted and paged; ``count_documents({})`` on every partition; the
  first page without a rule;
- the Python scan: every profile read (the query ``ProfileRepository.matching`` sends, every
  partition, batches of 500), built with ``profile_from_document`` and tested with ``holds``,
  ``--scan-repeat`` times, its time split into reading, building and testing.

The pushed-down size must equal the scan's count, and both first pages the first 50 of the
scan's members in id order, read from the records; otherwise the run fails. Prints a Markdown
section to stdout and writes nothing unless ``--write PATH`` is given; progress goes to stderr.
The store and its files are removed at the end, also on errors, Ctrl+C and SIGTERM.

    .venv/bin/python -m bench.segments [--profiles 20000] [--repeat 3] [--write BENCHMARKS.md]
"""

import argparse
import asyncio
import contextlib
import json
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
from typing import Any, cast

import bson
from mongoeco import AsyncMongoClient as EcoClient
from mongoeco.engines.sqlite import SQLiteEngine
from mongoeco.wire.bson_bridge import decode_wire_value
from pymongo import AsyncMongoClient, IndexModel, monitoring

from bench.checkout import milliseconds, verdict
from bench.gateway import BenchmarkError, progress
from bench.machine import TargetResult, load_average, machine, publish, target_lines
from bench.store_scale import CATEGORIES, DAY_MIX, PROGRESS_SECONDS, Store, insert_routed, open_store
from bench.store_scale import ShopperFactory as StoreScaleShoppers
from bench.store_scale import parse_options as store_scale_options
from profilegate import embedded
from profilegate.domain.aggregates import RECENT_EVENT_IDS, Aggregates, DayBucket, OrderEntry, order_key
from profilegate.domain.events import Channel, EventType
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.profiles import Profile
from profilegate.domain.segment_parser import RuleContext, parse_rule
from profilegate.domain.segment_predicate import holds
from profilegate.domain.segment_rules import Comparison, Rule, TraitTest
from profilegate.domain.segments import Segment
from profilegate.embedded import DATABASE_FILE, EmbeddedStore
from profilegate.service.segment_members import MembersPath, inside, members_path
from profilegate.service.segments import members_query, segment_members, segment_size
from profilegate.settings import Settings
from profilegate.storage.documents import Database, Document
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.profiles import checkout_document, profile_from_document, profile_to_document
from profilegate.storage.segment_members import member_document
from profilegate.storage.segment_query import PREFILTER_INDEXES
from profilegate.storage.store import open_client

PAGE = 50
SHARE_TARGET = 0.05  # the first page of members costs less than this share of the Python scan
SCAN_BATCH = 500  # what ProfileRepository.matching asks the store for at a time
LOAD_BATCH = 2000  # profiles generated and inserted per round (one insert_many per partition)
PROBE_DATABASE = "profilegate_bench_probe"  # a partition's worth of copies, for timing wire inserts
WIRE_PROBE = 5  # profiles inserted over the wire into it
STORE_START_SECONDS = 600.0
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
    loader: str
    write: Path | None


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.segments",
        description="Segment members and size pushed down to the store, against a Python scan.",
    )
    add = parser.add_argument
    add("--profiles", type=int, default=20_000, help="generated profiles to load (default 20000)")
    add("--repeat", type=int, default=3, help="timed runs of each pushed-down query (default 3)")
    add("--scan-repeat", type=int, default=2, help="timed Python scans per rule (default 2)")
    add("--seed", type=int, default=1, help="seed of the generated profiles (default 1)")
    add(
        "--loader",
        choices=("engine", "wire"),
        default="engine",
        help="engine: insert_many into the stopped store's file through mongoeco's client (default); "
        "wire: insert_many through the running store, which inserts one document at a time",
    )
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
        key = order_key(f"O-{rng.randint(10**8, 10**9)}")
        return {key: OrderEntry(total=gross, day=day, cancelled=cancelled, returned=returned)}

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


def as_received(document: Document) -> Document:
    """``document`` as the store's wire server hands it on after decoding a client's BSON."""
    received: Document = decode_wire_value(bson.BSON(bson.encode(document)).decode())
    return received


@dataclass(frozen=True)
class Targets:
    """Where the loaded documents go: profiles, checkout documents, segment memberships."""

    profiles: PartitionedCollection
    checkout: PartitionedCollection
    members: PartitionedCollection

    @classmethod
    def of(cls, database: Database, partitions: int) -> "Targets":
        names = ("profiles", "profile_checkout", "segment_members")
        return cls(*(PartitionedCollection(database, name, partitions) for name in names))


def memberships(batch: Sequence[Profile], now: datetime) -> list[Document]:
    """The membership records the gateway keeps on write, for the three rules at ``now``."""
    measured = [segment for _, segment in segments(Settings(), now)]
    return [
        member_document(key, profile.id, until)
        for profile in batch
        for key, until in inside(profile, measured, now).items()
    ]


async def insert_members(members: PartitionedCollection, documents: Sequence[Document]) -> None:
    """Bulk-insert membership records into the partitions their profile id routes them to."""
    batches: dict[int, list[Document]] = {}
    for document in documents:
        batches.setdefault(members.route(str(document["profileId"])), []).append(document)
    collections = members.all()
    for index, batch in batches.items():
        await collections[index].insert_many(batch)


async def load(
    targets: Targets,
    factory: ShopperFactory,
    count: int,
    prepared: Callable[[Document], Document],
) -> Loaded:
    """Generate ``count`` profiles and insert them, with their checkout documents and membership
    records, in rounds of ``LOAD_BATCH`` through ``insert_routed``; ``prepared`` turns a document
    into what is sent."""
    profiles, checkout = targets.profiles, targets.checkout
    loaded = Loaded()
    reported = time.monotonic()
    while loaded.profiles < count:
        started = time.perf_counter()
        size = min(LOAD_BATCH, count - loaded.profiles)
        batch = [factory.profile(loaded.profiles + number) for number in range(size)]
        documents = [profile_to_document(profile) for profile in batch]
        checkouts = [checkout_document(profile) for profile in batch]
        sent = [prepared(document) for document in documents]
        sent_checkouts = [prepared(document) for document in checkouts]
        sent_members = [prepared(document) for document in memberships(batch, factory.now)]
        inserting = time.perf_counter()
        await insert_routed(profiles, sent)
        await insert_routed(checkout, sent_checkouts)
        await insert_members(targets.members, sent_members)
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


async def load_over_wire(store: Store, database: Database, options: Options, now: datetime) -> Loaded:
    """Through the running store, as a client of it: ``insert_many`` over the wire."""
    factory = ShopperFactory(options.seed, now)
    targets = Targets.of(database, store.layout.partitions)
    return await load(targets, factory, options.profiles, lambda document: document)


async def load_in_process(data_dir: Path, partitions: int, options: Options, now: datetime) -> Loaded:
    """Straight into the store's database file, with the store stopped, through mongoeco's own
    client on the SQLite engine the store runs (documents as its wire server would pass them)."""
    engine = SQLiteEngine(str(data_dir / DATABASE_FILE), aggregation_materialization_limit=None)
    async with EcoClient(engine) as client:
        database = cast("Database", client[Settings().database])  # the same collection interface
        targets = Targets.of(database, partitions)
        loaded = await load(targets, ShopperFactory(options.seed, now), options.profiles, as_received)
        copies = ShopperFactory(options.seed + 1, now)
        partition = math.ceil(options.profiles / partitions)
        progress(f"  and a copy of one partition ({partition:,} profiles) in {PROBE_DATABASE}")
        probe = [as_received(profile_to_document(copies.profile(number))) for number in range(partition)]
        await client[PROBE_DATABASE]["profiles"].insert_many(probe)
        return loaded


@dataclass(frozen=True)
class WireProbe:
    """Milliseconds per profile inserted over the wire into an empty collection and into one
    holding a partition's worth of profiles."""

    empty_ms: list[float]
    full_ms: list[float]


async def wire_probe(client: AsyncMongoClient[Document], options: Options, now: datetime) -> WireProbe:
    """``WIRE_PROBE`` profiles inserted one by one into a fresh collection and into the copy of a
    full partition; the probe's database is dropped afterwards."""
    factory = ShopperFactory(options.seed + 2, now)
    database = client[PROBE_DATABASE]
    times: dict[str, list[float]] = {"empty": [], "profiles": []}
    for name, elapsed in times.items():
        for number in range(WIRE_PROBE):
            document = profile_to_document(factory.profile(number))
            elapsed.append((await timed(database[name].insert_one(document)))[0])
    await client.drop_database(PROBE_DATABASE)
    return WireProbe(times["empty"], times["profiles"])


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
    prefilter_ms: list[float] = field(default_factory=list)
    candidates: int | None = None  # profiles meeting the rule's prefilter; None: it has none
    plain_ms: list[float] = field(default_factory=list)
    plain_count: int | None = None  # the same test in the query language; None: not measured
    plain_page_ms: list[float] = field(default_factory=list)
    pushed_page_ms: list[float] = field(default_factory=list)  # the first page by the compiled rule
    pushed_page: list[str] = field(default_factory=list)
    page_commands: list[int] = field(default_factory=list)  # store commands of each first page
    path: MembersPath | None = None

    @property
    def query(self) -> Document:
        return members_query(self.segment, [self.segment], self.now)

    @property
    def now(self) -> datetime:
        return self.segment.updated_at

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
    if measured.pushed_page != expected[:PAGE]:
        raise BenchmarkError(f"{measured.segment.key}: the pushed-down first page differs from the scan's")
    if measured.path is not MembersPath.RECORDED:
        raise BenchmarkError(f"{measured.segment.key}: members were read by {measured.path}, not the records")
    if measured.page != expected[:PAGE]:
        extra = sorted(set(measured.page) - set(expected[:PAGE]))[:3]
        missing = sorted(set(expected[:PAGE]) - set(measured.page))[:3]
        raise BenchmarkError(
            f"{measured.segment.key}: the first page differs from the Python scan's first {PAGE} "
            f"members (only pushed down: {extra}; only in the scan: {missing}; "
            f"{len(measured.page)} against {len(expected[:PAGE])} ids)"
        )


class CommandCounter(monitoring.CommandListener):
    """Counts the commands the client sends while ``counting``."""

    def __init__(self) -> None:
        self.counting = False
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += self.counting

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


COUNTER = CommandCounter()


async def pushed_down(store: Store, measured: Measured) -> None:
    """One first page (from the membership records, as the ``members`` field reads it, with its
    store commands counted), the first time the first page by the compiled rule too (the path
    while a segment is backfilled), and one size, timed."""
    segments = [measured.segment]
    measured.path = await members_path(store.repos, measured.segment)
    COUNTER.count, COUNTER.counting = 0, True
    page_ms, (page, _) = await timed(
        segment_members(store.repos, measured.segment, segments, measured.now, first=PAGE, after=None)
    )
    COUNTER.counting = False
    measured.page_commands.append(COUNTER.count)
    if not measured.pushed_page_ms:  # once: it costs about what a scan costs
        pushed_ms, pushed = await timed(store.repos.profiles.matching_page(measured.query, PAGE + 1, None))
        measured.pushed_page_ms.append(pushed_ms)
        measured.pushed_page = [profile.id for profile in pushed[:PAGE]]
    size_ms, size = await timed(segment_size(store.repos, measured.segment, segments, measured.now))
    measured.page_ms.append(page_ms)
    measured.size_ms.append(size_ms)
    measured.page, measured.size = [profile.id for profile in page], size


def prefilter(query: Document) -> Document | None:
    """The necessary conditions ``segment_filter`` puts before the exact ``$expr`` test, alone;
    None when the rule has none."""
    clauses = query.get("$and")
    if not isinstance(clauses, list) or "$expr" not in clauses[-1]:
        return None
    return {"$and": clauses[:-1]}


def in_query_language(rule: Rule) -> Document | None:
    """A string trait equality in the plain query language (which also matches a list holding
    the string: for comparison only); None for other rules."""
    if isinstance(rule, TraitTest) and rule.op is Comparison.EQ and isinstance(rule.value, str):
        return {"traits." + ".".join(rule.path): rule.value}
    return None


async def store_costs(store: Store, measured: Measured, repeat: int) -> None:
    """What the size costs without the exact test: the prefilter alone, counted as ``size`` counts;
    for a trait test, the same test in the query language."""
    necessary = prefilter(measured.query)
    if necessary is not None:
        for _ in range(repeat):
            elapsed, measured.candidates = await timed(store.repos.profiles.count_matching(necessary))
            measured.prefilter_ms.append(elapsed)
    plain = in_query_language(measured.segment.rule)
    if plain is not None:
        for _ in range(repeat):
            elapsed, measured.plain_count = await timed(store.repos.profiles.count_matching(plain))
            measured.plain_ms.append(elapsed)
            elapsed, _ = await timed(store.repos.profiles.matching_page(plain, PAGE + 1, None))
            measured.plain_page_ms.append(elapsed)


@dataclass(frozen=True)
class Floors:
    count_all_ms: list[float]  # count_documents({}) on every partition
    first_page_ms: list[float]  # the repository's first page without a condition
    first_ids_ms: list[float]  # the same, but only the ids of each partition's first PAGE + 1
    fetched: int  # profiles the first page without a condition fetches from the partitions


async def floors(store: Store, repeat: int) -> Floors:
    partitions = store.profiles.all()

    async def count_all() -> int:
        return sum([await partition.count_documents({}) for partition in partitions])

    async def first_ids() -> list[str]:
        found: list[str] = []
        for partition in partitions:
            cursor = partition.find({"mergedInto": None}, {"_id": 1}).sort("_id", 1).limit(PAGE + 1)
            found += [str(document["_id"]) async for document in cursor]
        return found

    everything = [(await timed(count_all()))[0] for _ in range(repeat)]
    pages = [(await timed(store.repos.profiles.matching_page({}, PAGE + 1, None)))[0] for _ in range(repeat)]
    ids = [await timed(first_ids()) for _ in range(repeat)]
    return Floors(everything, pages, [elapsed for elapsed, _ in ids], len(ids[0][1]))


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
    wire_probe: WireProbe | None = None
    load_at_start: str = field(default_factory=load_average)
    load_at_end: str = "unknown"


async def prepare_store(uri: str, run: Run) -> None:
    """Prepare the database as the gateway does, add missing prefilter indexes; with
    ``--loader wire``, load the profiles through this running store."""
    client = open_client(uri)
    try:
        settings = Settings()
        database = client[settings.database]
        store = await open_store(database, settings)
        run.partitions = store.layout.partitions
        run.gateway_indexes = await prefilter_indexes(store)
        if not run.gateway_indexes:
            progress("no PREFILTER_INDEXES (the embedded default): created them on every profiles partition")
        if run.options.loader == "wire":
            progress(f"generating {run.options.profiles:,} profiles, inserting them over the wire")
            run.loaded = await load_over_wire(store, database, run.options, run.started)
    finally:
        await client.close()


async def measure(uri: str, run: Run) -> None:
    options, now = run.options, run.started
    client = open_client(uri, listeners=[COUNTER])
    try:
        settings = Settings()
        if options.loader == "engine":
            progress(f"timing {WIRE_PROBE} inserts over the wire into a full partition's copy")
            run.wire_probe = await wire_probe(client, options, now)
        store = await open_store(client[settings.database], settings)
        counted = sum([await partition.count_documents({}) for partition in store.profiles.all()])
        if counted != run.loaded.profiles:
            raise BenchmarkError(f"the store holds {counted:,} profiles, {run.loaded.profiles:,} were loaded")
        run.results = [Measured(title, segment) for title, segment in segments(settings, now)]
        for measured in run.results:  # the loader wrote every member's record, as a backfill would
            await store.repos.segment_members.mark_built(measured.segment.key, measured.segment.version)
        progress("warming up: every profile counted once, not timed")
        await store.repos.profiles.count_matching({})
        progress(f"pushed down: {options.repeat} first pages and sizes per rule")
        for _ in range(options.repeat):
            for measured in run.results:
                await pushed_down(store, measured)
        for measured in run.results:
            progress(
                f"  {measured.title}: {len(measured.page)} on the first page "
                f"({statistics.median(measured.page_ms):,.1f} ms), size {measured.size:,} "
                f"({statistics.median(measured.size_ms):,.1f} ms)"
            )
        progress("the store's costs: prefilters alone, counting everything, a first page without a rule")
        for measured in run.results:
            await store_costs(store, measured, options.repeat)
        run.floors = await floors(store, options.repeat)
        for measured in run.results:
            for number in range(options.scan_repeat):
                progress(f"Python scan {number + 1}/{options.scan_repeat}: {measured.title}")
                scan = await python_scan(store, measured.segment, now)
                if scan.profiles != run.loaded.profiles:
                    raise BenchmarkError(f"the Python scan read {scan.profiles:,} profiles, not all of them")
                measured.scans.append(scan)
            check(measured)
            progress(f"  {measured.members:,} members, {measured.scan_ms():,.0f} ms; the same as pushed down")
        run.load_at_end = load_average()
    finally:
        await client.close()


def benchmark(run: Run) -> None:
    """Prepare the store, load it, and measure on the store started afresh, as the gateway
    would find it after a restart."""
    with tempfile.TemporaryDirectory(prefix="profilegate-segments-") as scratch:
        data_dir = Path(scratch)
        with embedded_store(data_dir) as uri:
            asyncio.run(prepare_store(uri, run))
        if run.options.loader == "engine":
            progress(f"generating {run.options.profiles:,} profiles, inserting them into the stopped store")
            run.loaded = asyncio.run(load_in_process(data_dir, run.partitions, run.options, run.started))
        progress("starting the store again")
        with embedded_store(data_dir) as uri:
            asyncio.run(measure(uri, run))


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
    timing = (
        f"{loaded.insert_seconds:,.0f} s inserting ({rate:,.1f} profiles/s), "
        f"{loaded.generate_seconds:,.0f} s generating"
    )
    if options.loader == "wire":
        how = (
            "`insert_many`-ed over the wire through the running store (the gateway's client path) by "
            f"`insert_routed`, {LOAD_BATCH:,} profiles a round: {timing}; the store was then started "
            "again, as after a restart of the gateway."
        )
    else:
        how = (
            "inserted while the store was stopped, straight into its SQLite file through mongoeco's own "
            "client on the engine the store runs (`insert_many`; documents BSON-encoded and decoded as "
            "the store's wire server decodes them), routed by `insert_routed`, "
            f"{LOAD_BATCH:,} profiles a round: {timing}; then the store was started again, as after a "
            f"restart of the gateway.{wire_text(run)}"
        )
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
        "- Loading (not part of the targets): `profile_to_document` and `checkout_document` documents, "
        "and the membership records of the three rules (`member_document` for each segment `inside` "
        "says the profile is in, at the run's `now`: what the gateway's backfill or its writes would "
        "have recorded, routed by profile id; the segments are then marked complete over the wire) "
        f"{how} Identity keys and the event log were not loaded: no segment query reads them.",
    ]


def wire_text(run: Run) -> str:
    """What loading through the running store would have cost, from the probe."""
    probe = run.wire_probe
    if probe is None:
        return ""
    empty, full = statistics.median(probe.empty_ms), statistics.median(probe.full_ms)
    partition = math.ceil(run.loaded.profiles / run.partitions)
    # An insert costs a fixed part plus a part in proportion to the documents already there, so
    # the average insert of a load costs about the mean of the first and the last.
    estimate = run.loaded.profiles * (empty + full) / 2 / 1000
    return (
        " Over the wire the store inserts one document at a time and reads every document already in "
        f"the collection for each: a profile took {milliseconds(empty)} ms to insert into a new "
        f"collection and {milliseconds(full)} ms into one of {partition:,} such profiles (medians of "
        f"{WIRE_PROBE} inserts each, over the wire, into a copy in another database), so loading the "
        f"profile documents alone through the running store would take about {duration(estimate)}."
    )


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


def row(name: str, values: Sequence[float], scan: float) -> str:
    median = statistics.median(values)
    return f"| {name} | {milliseconds(median)} | {milliseconds(min(values))} | {share(median, scan)} |"


def rule_table(measured: Measured, profiles: int) -> list[str]:
    scan = measured.scan_ms()
    lines = [
        f"### {measured.title.capitalize()}: `{measured.segment.rule_text}`",
        "",
        f"Members: {measured.members:,} of {profiles:,} profiles ({measured.members / profiles:.1%}). "
        f"The pushed-down size equals the Python scan's count, and the first page its first {PAGE} "
        "members in id order.",
        "",
        "| query | median ms | min ms | median / Python scan |",
        "|---|---:|---:|---:|",
        row(
            f"first page of {PAGE} members from the membership records (`segment_members`, "
            f"{commands_text(measured)})",
            measured.page_ms,
            scan,
        ),
        row(
            f"first page of {PAGE} members by the compiled rule (`matching_page`: the path while a "
            "saved segment is backfilled)",
            measured.pushed_page_ms,
            scan,
        ),
        row("size, pushed down (`segment_size`)", measured.size_ms, scan),
    ]
    if measured.candidates is not None:
        name = f"its prefilter alone, counted as the size is ({measured.candidates:,} candidates)"
        lines.append(row(name, measured.prefilter_ms, scan))
    plain = in_query_language(measured.segment.rule)
    if plain is not None and measured.plain_count is not None:
        shown = json.dumps(plain, ensure_ascii=False)
        name = f"the same test in the query language, `{shown}`: first page (`matching_page`)"
        lines.append(row(name, measured.plain_page_ms, scan))
        name = f"the same test in the query language, `{shown}`: counted ({measured.plain_count:,})"
        lines.append(row(name, measured.plain_ms, scan))
    lines.append(
        f"| Python scan: read every profile, `profile_from_document`, `holds` | {milliseconds(scan)} | "
        f"{milliseconds(min(s.total_ms for s in measured.scans))} | 100% |"
    )
    parts: list[tuple[str, Callable[[Scan], float]]] = [
        ("of which reading (`find` on every partition, batches of 500)", lambda s: s.read_ms),
        ("of which `profile_from_document`", lambda s: s.build_ms),
        ("of which `holds`", lambda s: s.test_ms),
    ]
    for name, part in parts:
        lines.append(row(f"- {name}", [part(s) for s in measured.scans], scan))
    return [*lines, ""]


def commands_text(measured: Measured) -> str:
    counts = sorted(set(measured.page_commands))
    return f"{' or '.join(str(count) for count in counts)} store commands"


def targets_text(run: Run) -> list[str]:
    lines = [
        f"Target (the first page of members costs less than {SHARE_TARGET:.0%} of the full Python scan; "
        "medians):",
        "",
    ]
    results = []
    for measured in run.results:
        page, scan = statistics.median(measured.page_ms), measured.scan_ms()
        lines.append(
            f"- {measured.title}: **{verdict(page / scan < SHARE_TARGET)}**, {share(page, scan)} "
            f"({milliseconds(page)} ms against {milliseconds(scan)} ms, {commands_text(measured)}); the "
            f"compiled rule's first page costs {share(statistics.median(measured.pushed_page_ms), scan)}, "
            f"the size {share(statistics.median(measured.size_ms), scan)}."
        )
        profiles = f"{run.options.profiles:,} profiles"
        operation = f"first page of members / Python scan, {measured.title}, {profiles}"
        target = f"< {SHARE_TARGET:.0%}"
        results.append(TargetResult(operation, share(page, scan), target, page / scan < SHARE_TARGET))
    return [*lines, "", *target_lines(results)]


def render(run: Run) -> str:
    when = run.started.strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{name} {version(name)}" for name in ("mongoeco", "pymongo", "pydantic"))
    indexes = ", ".join(f"`{name}`" for name, _ in PREFILTER_INDEXES)
    made = (
        "created by the gateway's `prepare`"
        if run.gateway_indexes
        else "created by the benchmark before loading (the gateway creates them on MongoDB; on the embedded "
        "store only with `PROFILEGATE_SEGMENT_INDEXES=true`)"
    )
    lines = [
        "## Segments: members from the membership records against a Python scan",
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
        "- Measured, with one `now` for the whole run, after every profile was counted once (not timed, "
        f"to warm the store), {repetitions(run.options.repeat)}: the first page of each rule "
        f"(`segment_members` with `first: {PAGE}`: the membership records kept on write are read as "
        f"one `_id` range of up to {PAGE + 1} per partition, merged, then the page's profiles by "
        "`_id` (`$in`) from the partitions that hold them, each checked against the rule), the first "
        f"page by the compiled rule (`matching_page` asks every partition for its first {PAGE + 1} "
        "matches in id order and merges them) and the size (`segment_size`: "
        "`count_documents` on every partition), in rounds over the rules; each rule's prefilter alone "
        f"and the trait test in the plain query language. Then {scans(run.options.scan_repeat)} per "
        "rule: every profile read as `ProfileRepository.matching({})` reads them (`find` on every "
        "partition, batches of 500), built with `profile_from_document` and tested with `holds`. The "
        "client and the store share the machine.",
        "",
        *(line for measured in run.results for line in rule_table(measured, run.loaded.profiles)),
        *targets_text(run),
        "",
        *note(run),
    ]
    return "\n".join(lines) + "\n"


def repetitions(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def scans(count: int) -> str:
    return "one Python scan" if count == 1 else f"{count} Python scans"


def per_profile(elapsed_ms: float, profiles: int) -> str:
    return f"{elapsed_ms * 1000 / profiles:,.0f} µs"


def note(run: Run) -> list[str]:
    """What the pushed-down queries spend their time on, from the same run's figures."""
    floors = run.floors
    assert floors is not None, "the floors are measured before the report"
    profiles = run.loaded.profiles
    everything = statistics.median(floors.count_all_ms)
    unconditional = statistics.median(floors.first_page_ms)
    pages = ", ".join(
        f"{share(statistics.median(m.page_ms), statistics.median(m.size_ms))}" for m in run.results
    )
    lines = [
        "What the time goes to on the embedded store (the same run, medians):",
        "",
        f"- The store decodes every document a query reads, in Python, at a cost per BSON element, "
        f"even to count: `count_documents({{}})` on every partition takes {milliseconds(everything)} ms, "
        f"{per_profile(everything, profiles)} a profile (median document "
        f"{kib(statistics.median(run.loaded.sizes))}).",
        "- With a rule, the store tests every candidate (decoding it and evaluating the `$expr` in "
        "Python) before it sorts by `_id` and cuts the page, so the first page costs about what the "
        f"size costs (first page / size: {pages}). Even without a rule, the first page "
        f"(`matching_page({{}}, {PAGE + 1})`) takes {milliseconds(unconditional)} ms: each partition "
        f"sends up to its first {PAGE + 1} profiles, {floors.fetched:,} whole documents for one page; "
        f"their ids alone take {milliseconds(statistics.median(floors.first_ids_ms))} ms.",
    ]
    for measured in run.results:
        lines.append(f"- {measured.title.capitalize()}: {exact_test_text(measured, profiles)}")
    reading = statistics.median(m.scan_ms(lambda s: s.read_ms) for m in run.results)
    building = statistics.median(m.scan_ms(lambda s: s.build_ms) for m in run.results)
    testing = statistics.median(m.scan_ms(lambda s: s.test_ms) for m in run.results)
    lines.append(
        f"- The Python scan reads at {per_profile(reading, profiles)} a profile (the store decodes each "
        "document and encodes it again for the wire, pymongo decodes it), `profile_from_document` takes "
        f"{per_profile(building, profiles)} and `holds` {per_profile(testing, profiles)}."
    )
    return lines


def exact_test_text(measured: Measured, profiles: int) -> str:
    """The exact test's cost per profile it runs on (all, or the prefilter's candidates)."""
    size = statistics.median(measured.size_ms)
    if measured.candidates is None:
        text = (
            f"no prefilter: the exact test (`$expr`) runs on all {profiles:,} profiles, "
            f"{per_profile(size, profiles)} each with the decoding."
        )
    else:
        narrowed = statistics.median(measured.prefilter_ms)
        text = (
            f"the indexed prefilter leaves {measured.candidates:,} candidates "
            f"({measured.candidates / profiles:.1%}) in {milliseconds(narrowed)} ms; the exact test "
            f"(`$expr`) on them adds {milliseconds(size - narrowed)} ms, "
            f"{per_profile(size - narrowed, max(1, measured.candidates))} a candidate."
        )
    if measured.plain_ms and measured.plain_page_ms:
        plain, page = statistics.median(measured.plain_ms), statistics.median(measured.plain_page_ms)
        text += (
            f" The same test in the query language, without `$expr`, is selected by the store in SQL: "
            f"counting takes {milliseconds(plain)} ms ({share(plain, size)} of the size; the store still "
            f"decodes every match to count it) and the first page {milliseconds(page)} ms "
            f"({share(page, statistics.median(measured.page_ms))} of the page with `$expr`)."
        )
    return text


def command_line(argv: Sequence[str] | None) -> str:
    arguments = list(sys.argv[1:] if argv is None else argv)
    return shlex.join([".venv/bin/python", "-m", "bench.segments", *arguments])


@contextlib.contextmanager
def embedded_store(data_dir: Path) -> Iterator[str]:
    """The embedded store on ``data_dir`` as the gateway starts it (SQLite engine, its own process).

    Opening a loaded store's file can take longer than the gateway waits on a busy machine:
    the benchmark waits up to ``STORE_START_SECONDS``."""
    embedded.START_TIMEOUT_SECONDS = max(embedded.START_TIMEOUT_SECONDS, STORE_START_SECONDS)
    with EmbeddedStore(data_dir=data_dir, engine="sqlite") as store:
        assert store.uri is not None, "a started store has a URI"
        yield store.uri


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    run = Run(options, command_line(argv))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM as on Ctrl+C
    try:
        benchmark(run)
    except KeyboardInterrupt:
        progress("interrupted: the store was stopped and its data removed")
        return 130
    except BenchmarkError as error:
        progress(f"error: {error}")
        return 1
    publish(render(run), options.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
