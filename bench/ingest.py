"""Events per second through ``POST /v1/track`` and the ``track`` mutation, against a bare floor.

Starts a real gateway (``python -m profilegate serve`` on a free port, in a process group of
its own, with the embedded store it starts in a temporary data directory), creates an
``INGEST`` key through GraphQL and sends generated shop events in batches:

- phase A: ``--events`` events as JSON batches to ``POST /v1/track``;
- phase B: ``--mutation-events`` new events (other ids, the same customers) through the
  ``track`` mutation;
- floor: the documents the gateway's event log wrote in phases A and B, in that order
  (``event_document`` of ``parse_event``, with the real profile ids), ``insert_many``-ed in the
  same batches into one fresh collection of another database of the same running store: the
  bare write, no validation, no profile update, no secondary index. It runs last, from one
  sequential writer, until it has written them all or ``--floor-seconds`` have passed. Each
  phase is compared with the floor over the same stretch of the log. On the embedded store
  every new document costs O(collection size), so the floor slows down as its collection
  grows; what it does not reach in time is extrapolated from a least-squares fit of batch time
  against collection size and marked as such.

The events are deterministic for a ``--seed`` (times relative to the start of the run):
customers ``customer-N@example.com`` with skewed activity; mostly product views, then adds to
cart, checkouts, orders (line items, shipping and discounts adding up to the total, EUR)
and returns of earlier orders; channels web, app and store; times within the last 30 days.
Every event must be accepted; anything else stops the run.

Prints a Markdown section to stdout and writes nothing unless ``--write PATH`` is given.
Progress goes to stderr. The gateway is stopped and its data removed at the end, also on
errors, Ctrl+C and SIGTERM.

    .venv/bin/python -m bench.ingest [--events 100000] [--profiles 1000] [--batch 100] [--write BENCHMARKS.md]
"""

import argparse
import asyncio
import contextlib
import itertools
import math
import random
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import bson
import httpx
import orjson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient

from bench.gateway import BenchmarkError, Gateway, create_api_key, progress
from bench.gateway import running_gateway as start_gateway
from bench.machine import TargetResult, gateway_versions, load_average, machine, publish, target_lines
from bench.store_scale import CATEGORIES
from profilegate.domain.events import Channel, EventType, parse_event
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.settings import Settings
from profilegate.storage.documents import Database, Document
from profilegate.storage.events import event_document
from profilegate.storage.identity_keys import IdentityKeyRepository
from profilegate.storage.layout import Layout, load_layout
from profilegate.storage.partitions import PartitionedCollection

SHARE_TARGET = 0.30  # the gateway sustains at least this share of the floor's events/s
STEADY_TARGET = 0.70  # the last tenth's rate is at least this share of the first tenth's
TENTHS = 10
WINDOW_DAYS = 30
FLOOR_DATABASE = "profilegate_floor"
FLOOR_COLLECTION = "floor_events"
REQUEST_TIMEOUT_SECONDS = 600.0
PROGRESS_SECONDS = 30.0

TRACK_MUTATION = """
mutation Track($events: [EventInput!]!) {
  track(events: $events) { accepted duplicates rejected results { id status reason } }
}
"""
PRICES = tuple(Decimal(p) for p in ("4.99", "9.99", "14.95", "19.99", "29.99", "39.90", "49.95", "59.99"))
PRICES += tuple(Decimal(p) for p in ("79.99", "89.00", "99.95", "129.00", "149.99", "199.00", "249.00"))
CATALOGUE_SIZE = 400
STORES = ("store-berlin-01", "store-hamburg-02", "store-munich-01", "store-cologne-03")
# The share of each event type (order returns fall back to a product view while the customer
# has no order yet).
MIX = (
    (EventType.PRODUCT_VIEW, 0.70),
    (EventType.ADD_TO_CART, 0.14),
    (EventType.CHECKOUT_STARTED, 0.07),
    (EventType.ORDER_COMPLETED, 0.06),
    (EventType.ORDER_RETURNED, 0.03),
)
BROWSING_CHANNELS = ((Channel.WEB, 0.62), (Channel.APP, 0.35), (Channel.STORE, 0.03))
ORDER_CHANNELS = ((Channel.WEB, 0.55), (Channel.APP, 0.30), (Channel.STORE, 0.15))
CENT = Decimal("0.01")
FREE_SHIPPING_FROM = Decimal(50)
SHIPPING = Decimal("4.95")


# --- options -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    events: int
    mutation_events: int
    profiles: int
    batch: int
    senders: int
    floor_seconds: float
    workers: int
    event_segment_size: int | None
    seed: int
    write: Path | None


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description="Events/s through POST /v1/track and the track mutation, against a bare insert_many.",
    )
    add = parser.add_argument
    add("--events", type=int, default=100_000, help="events through POST /v1/track (default 100000)")
    add(
        "--mutation-events",
        type=int,
        default=20_000,
        help="new events through the track mutation (default 20000; 0 skips it)",
    )
    add("--profiles", type=int, default=1000, help="customers the events are spread over (default 1000)")
    add("--batch", type=int, default=100, help="events per request and per insert_many (default 100)")
    add("--senders", type=int, default=4, help="concurrent HTTP senders (default 4)")
    add(
        "--floor-seconds",
        type=float,
        default=900.0,
        help="time the floor may take before the rest is extrapolated (default 900)",
    )
    add("--workers", type=int, default=1, help="gateway processes (serve --workers, default 1)")
    add(
        "--event-segment-size",
        type=int,
        default=None,
        help="set PROFILEGATE_EVENT_SEGMENT_SIZE for the gateway (default: unset, the gateway decides)",
    )
    add("--seed", type=int, default=1, help="seed of the generated events (default 1)")
    add("--write", type=Path, default=None, help="also append the section to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 500:
        parser.error("need 1 <= --batch <= 500 (the gateway's batch limit)")
    for name in ("events", "mutation_events"):
        count = getattr(args, name)
        if count and (count % args.batch or count < TENTHS * args.batch):
            flag = "--" + name.replace("_", "-")
            parser.error(f"{flag} must be a multiple of --batch and at least {TENTHS} batches (or 0)")
    if args.events == 0:
        parser.error("--events must not be 0")
    if args.event_segment_size is not None and args.event_segment_size < 100:
        parser.error("--event-segment-size must be at least 100 (the gateway's minimum)")
    if min(args.profiles, args.senders, args.workers) < 1 or args.floor_seconds <= 0:
        parser.error("need --profiles, --senders, --workers >= 1 and --floor-seconds > 0")
    return Options(**{name: getattr(args, name) for name in Options.__dataclass_fields__})


# --- realistic events --------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    sku: str
    category: str
    price: Decimal


@dataclass(frozen=True)
class Event:
    """One shop event, independent of the wire shape it travels in."""

    id: str
    type: EventType
    at: datetime
    channel: Channel
    email: str
    properties: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The ``POST /v1/track`` shape."""
        return {
            "id": self.id,
            "type": self.type.value,
            "at": _iso(self.at),
            "channel": self.channel.value,
            "identity": {"type": "EMAIL", "value": self.email},
            "properties": self.properties,
        }

    def as_graphql(self) -> dict[str, Any]:
        """The ``EventInput`` shape of the ``track`` mutation."""
        return {
            "id": self.id,
            "at": _iso(self.at),
            "channel": self.channel.name,
            "ref": {"identity": {"type": "EMAIL", "value": self.email}},
            "payload": {_camel(self.type.value): self.properties},
        }


@dataclass
class Customer:
    email: str
    orders: list[tuple[str, datetime, list[dict[str, Any]]]] = field(default_factory=list)


class EventFactory:
    """Deterministic events for a seed; times are relative to ``now`` and never after it."""

    def __init__(self, seed: int, profiles: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.customers = [Customer(f"customer-{number}@example.com") for number in range(1, profiles + 1)]
        # Some customers are far busier than others.
        self.activity = [self.rng.lognormvariate(0.0, 0.8) for _ in self.customers]
        self.catalogue = [
            Product(f"SKU-{number:05d}", self.rng.choice(CATEGORIES), self.rng.choice(PRICES))
            for number in range(1, CATALOGUE_SIZE + 1)
        ]
        self.order_count = 0

    def events(self, phase: str, count: int) -> list[Event]:
        customers = self.rng.choices(self.customers, weights=self.activity, k=count)
        return [self.event(phase, customer) for customer in customers]

    def event(self, phase: str, customer: Customer) -> Event:
        kind = self._pick(MIX)
        if kind is EventType.ORDER_RETURNED and not customer.orders:
            kind = EventType.PRODUCT_VIEW
        at = self.now - timedelta(seconds=self.rng.uniform(60.0, WINDOW_DAYS * 86_400.0))
        channels = ORDER_CHANNELS if kind is EventType.ORDER_COMPLETED else BROWSING_CHANNELS
        channel = self._pick(channels)
        match kind:
            case EventType.ORDER_COMPLETED:
                properties = self._order(customer, at, channel)
            case EventType.ORDER_RETURNED:
                properties, at = self._return(customer)
            case EventType.CHECKOUT_STARTED:
                lines = self._lines()
                properties = {"cartTotal": _money(_lines_total(lines)), "currency": "EUR"}
            case _:
                product = self.rng.choice(self.catalogue)
                properties = {
                    "sku": product.sku,
                    "category": product.category,
                    "price": _money(product.price),
                    "currency": "EUR",
                }
                if kind is EventType.ADD_TO_CART:
                    properties["quantity"] = self.rng.choice((1, 1, 1, 2, 3))
        event_id = f"{phase}-{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"
        return Event(event_id, kind, at, channel, customer.email, properties)

    def _order(self, customer: Customer, at: datetime, channel: Channel) -> dict[str, Any]:
        self.order_count += 1
        order_id = f"ORD-{self.order_count:07d}"
        lines = self._lines()
        subtotal = _lines_total(lines)
        shipping = Decimal(0) if subtotal >= FREE_SHIPPING_FROM or channel is Channel.STORE else SHIPPING
        order: dict[str, Any] = {"orderId": order_id, "currency": "EUR", "items": lines}
        discount = Decimal(0)
        if self.rng.random() < 0.12:
            discount = (subtotal * Decimal("0.10")).quantize(CENT)
            order["couponCode"] = "WELCOME10"
            order["discount"] = _money(discount)
        if shipping:
            order["shipping"] = _money(shipping)
        if channel is Channel.STORE:
            order["storeId"] = self.rng.choice(STORES)
        order["total"] = _money(subtotal + shipping - discount)
        customer.orders.append((order_id, at, lines))
        return order

    def _return(self, customer: Customer) -> tuple[dict[str, Any], datetime]:
        order_id, ordered_at, lines = self.rng.choice(customer.orders)
        line = self.rng.choice(lines)
        quantity = self.rng.randint(1, int(line["quantity"]))
        latest = self.now - timedelta(minutes=1)
        at = min(latest, ordered_at + timedelta(hours=self.rng.uniform(2.0, 14 * 24.0)))
        properties = {
            "orderId": order_id,
            "amount": _money(Decimal(line["price"]) * quantity),
            "currency": "EUR",
            "items": [{"sku": line["sku"], "quantity": quantity}],
        }
        return properties, max(at, ordered_at)

    def _lines(self) -> list[dict[str, Any]]:
        products = self.rng.sample(self.catalogue, self.rng.choice((1, 1, 2, 2, 3, 4)))
        return [
            {
                "sku": product.sku,
                "category": product.category,
                "price": _money(product.price),
                "quantity": self.rng.choice((1, 1, 1, 1, 2, 3)),
            }
            for product in products
        ]

    def _pick[T](self, shares: Sequence[tuple[T, float]]) -> T:
        return self.rng.choices([item for item, _ in shares], weights=[share for _, share in shares])[0]


def _lines_total(lines: Sequence[dict[str, Any]]) -> Decimal:
    return sum((Decimal(line["price"]) * int(line["quantity"]) for line in lines), Decimal(0))


def _money(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def batches[T](items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


# --- measurements ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One batch: when it was sent and answered (seconds since the phase began), its size,
    and how many documents its collection held before it (the floor only)."""

    started: float
    finished: float
    events: int
    before: int = 0


@dataclass(frozen=True)
class Phase:
    name: str
    planned: int
    sent: list[Sent]
    note: str = ""
    resent: list[str] = field(default_factory=list)  # why each batch sent again was refused

    @property
    def events(self) -> int:
        return sum(batch.events for batch in self.sent)

    @property
    def complete(self) -> bool:
        return self.events >= self.planned

    @property
    def seconds(self) -> float:
        return max((batch.finished for batch in self.sent), default=0.0)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def slice(self, start: int, end: int) -> "Phase":
        """The batches written when their collection held ``start`` to ``end`` documents, timed
        from the first of them (for the floor, whose one writer sends batches one after another)."""
        inside = [batch for batch in self.sent if start <= batch.before < end]
        offset = min((batch.started for batch in inside), default=0.0)
        shifted = [Sent(b.started - offset, b.finished - offset, b.events, b.before) for b in inside]
        return Phase(self.name, end - start, shifted)

    def tenths(self) -> list[float]:
        """Events/s in each tenth of the phase's events, in the order they were answered.

        A batch's events count as answered evenly over the time it was in flight: concurrent
        senders get their answers in bunches, and cutting at batch boundaries would make some
        tenths look instant and others idle.
        """
        total = self.events
        if not total:
            return []
        bounds = [0.0, *(self.time_at(total * tenth / TENTHS) for tenth in range(1, TENTHS)), self.seconds]
        return [total / TENTHS / max(high - low, 1e-9) for low, high in itertools.pairwise(bounds)]

    def answered_by(self, moment: float) -> float:
        done = 0.0
        for batch in self.sent:
            if moment >= batch.finished:
                done += batch.events
            elif moment > batch.started:
                done += batch.events * (moment - batch.started) / (batch.finished - batch.started)
        return done

    def time_at(self, events: float) -> float:
        """When ``events`` events had been answered (bisection; answered_by only grows)."""
        low, high = 0.0, self.seconds
        for _ in range(60):
            middle = (low + high) / 2
            if self.answered_by(middle) < events:
                low = middle
            else:
                high = middle
        return high

    @property
    def steadiness(self) -> float:
        rates = self.tenths()
        return rates[-1] / rates[0] if len(rates) == TENTHS and rates[0] else 0.0


@dataclass(frozen=True)
class FloorModel:
    """Seconds per batch = ``fixed`` + ``per_document`` x documents already in the collection."""

    fixed: float
    per_document: float

    @classmethod
    def fit(cls, floor: Phase) -> "FloorModel | None":
        points = [(float(batch.before), batch.finished - batch.started) for batch in floor.sent]
        if len(points) < 3:
            return None
        mean_x = sum(x for x, _ in points) / len(points)
        mean_y = sum(y for _, y in points) / len(points)
        spread = sum((x - mean_x) ** 2 for x, _ in points)
        if spread == 0:
            return None
        slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
        slope = max(0.0, slope)
        return cls(fixed=max(0.0, mean_y - slope * mean_x), per_document=slope)

    def seconds(self, events: int, batch: int, start: int = 0) -> float:
        """Time to insert documents ``start`` to ``events`` in batches of ``batch``."""
        count = max(0, math.ceil((events - start) / batch))
        first_before = start
        last_before = start + (count - 1) * batch
        return count * self.fixed + self.per_document * count * (first_before + last_before) / 2

    def rate(self, start: int, end: int, batch: int) -> float:
        """Events/s while the collection grows from ``start`` to ``end`` documents."""
        seconds = self.seconds(end, batch, start)
        return (end - start) / seconds if seconds else 0.0

    def tenths(self, start: int, end: int, batch: int) -> list[float]:
        bounds = [start + (end - start) * tenth // TENTHS for tenth in range(TENTHS + 1)]
        return [self.rate(low, high, batch) for low, high in itertools.pairwise(bounds)]


@dataclass(frozen=True)
class FloorStretch:
    """The floor while its collection grew from ``start`` to ``end`` documents: the same stretch
    of the log as one gateway phase wrote. Measured, or extrapolated where the floor ran out of time."""

    start: int
    end: int
    measured: Phase
    model: FloorModel | None
    upper_bound: float  # events/s the floor cannot have beaten over this stretch
    bound_basis: str

    @classmethod
    def of(cls, floor: Phase, model: FloorModel | None, start: int, end: int) -> "FloorStretch":
        measured = floor.slice(start, end)
        # Every batch costs at least as much as one written into a smaller collection, so the
        # rate measured over the stretch's start (or, past what was written, over the last
        # tenth written) bounds the rate over the whole stretch from above.
        written = floor.events
        if measured.sent:
            basis = f"its measured rate over the first {measured.events:,} events of this stretch"
            return cls(start, end, measured, model, measured.rate, basis)
        last = floor.slice(written - written // TENTHS, written)
        basis = f"its measured rate over the last {last.events:,} events it wrote, before this stretch"
        return cls(start, end, measured, model, last.rate, basis)

    @property
    def events(self) -> int:
        return self.end - self.start

    @property
    def complete(self) -> bool:
        return self.measured.events >= self.events

    def rate(self, batch: int) -> float | None:
        if self.complete:
            return self.measured.rate
        return None if self.model is None else self.model.rate(self.start, self.end, batch)

    def tenths(self, batch: int) -> list[float]:
        if self.complete:
            return self.measured.tenths()
        return [] if self.model is None else self.model.tenths(self.start, self.end, batch)


class Progress:
    """Reports a phase's progress on stderr every ``PROGRESS_SECONDS``."""

    def __init__(self, name: str, planned: int) -> None:
        self.name = name
        self.planned = planned
        self.done = 0
        self.started = self.reported = time.perf_counter()

    def add(self, events: int) -> None:
        self.done += events
        now = time.perf_counter()
        if now - self.reported >= PROGRESS_SECONDS:
            self.reported = now
            elapsed = now - self.started
            progress(
                f"  {self.name}: {self.done:,}/{self.planned:,} events after {elapsed:.0f} s "
                f"({self.done / elapsed:.1f} events/s)"
            )


# --- the gateway -------------------------------------------------------------------------


@contextlib.contextmanager
def running_gateway(options: Options) -> Iterator[Gateway]:
    settings: dict[str, str] = {}
    if options.event_segment_size is not None:
        settings["PROFILEGATE_EVENT_SEGMENT_SIZE"] = str(options.event_segment_size)
    with start_gateway("profilegate-ingest-", options.workers, settings) as gateway:
        yield gateway


async def create_ingest_key(http: httpx.AsyncClient, admin_key: str) -> str:
    return await create_api_key(http, admin_key, "INGEST", "ingest-benchmark")


# --- sending -----------------------------------------------------------------------------

type Post = Callable[[httpx.AsyncClient, bytes, int, bool], Awaitable[None]]

RESENDS = 3  # times a batch answered 5xx is sent again, as a tracking client does
RESEND_AFTER_SECONDS = 1.0


class ServerFailed(BenchmarkError):
    """The gateway answered 5xx: the batch may be sent again (its event ids make that safe)."""


async def post_track(http: httpx.AsyncClient, body: bytes, size: int, again: bool) -> None:
    response = await http.post("/v1/track", content=body, headers={"content-type": "application/json"})
    if response.status_code >= 500:
        raise ServerFailed(f"POST /v1/track answered {response.status_code}: {response.text[:500]}")
    if response.status_code != 200:
        raise BenchmarkError(f"POST /v1/track answered {response.status_code}: {response.text[:500]}")
    check_outcome("POST /v1/track", response.json(), size, again)


async def post_mutation(http: httpx.AsyncClient, body: bytes, size: int, again: bool) -> None:
    response = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
    if response.status_code >= 500:
        raise ServerFailed(f"the track mutation answered {response.status_code}: {response.text[:500]}")
    answer = response.json()
    if response.status_code != 200 or answer.get("errors"):
        raise BenchmarkError(f"the track mutation answered {response.status_code}: {response.text[:500]}")
    check_outcome("the track mutation", answer["data"]["track"], size, again)


def check_outcome(path: str, outcome: dict[str, Any], size: int, again: bool = False) -> None:
    """Every event accepted; a batch sent again may find some already logged (duplicates)."""
    done = outcome.get("accepted", 0) + (outcome.get("duplicates", 0) if again else 0)
    if done == size:
        return
    refused = [r for r in outcome.get("results", []) if str(r.get("status")).lower() != "accepted"]
    counts = {name: outcome.get(name) for name in ("accepted", "duplicates", "rejected")}
    raise BenchmarkError(
        f"{path} did not accept all {size} events of a batch: {counts}; first: {refused[:3]}"
    )


async def send(
    name: str, bodies: Sequence[tuple[bytes, int]], post: Post, http: httpx.AsyncClient, senders: int
) -> Phase:
    """Send every body from ``senders`` concurrent tasks, each taking the next unsent one."""
    queue = iter(bodies)
    sent: list[Sent] = []
    resent: list[str] = []
    planned = sum(size for _, size in bodies)
    report = Progress(name, planned)
    began = time.perf_counter()

    async def sender() -> None:
        for body, size in queue:
            started = time.perf_counter() - began
            for attempt in range(RESENDS + 1):
                try:
                    await post(http, body, size, attempt > 0)
                    break
                except ServerFailed as failed:
                    if attempt == RESENDS:
                        raise
                    resent.append(str(failed))
                    await asyncio.sleep(RESEND_AFTER_SECONDS)
            sent.append(Sent(started, time.perf_counter() - began, size))
            report.add(size)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(senders):
                group.create_task(sender())
    except ExceptionGroup as failed:
        first = failed.exceptions[0]
        if isinstance(first, BenchmarkError):
            raise first from None
        raise BenchmarkError(f"{name}: a request failed: {first!r}") from first
    return Phase(name, planned, sent, resent=resent)


def track_bodies(events: Sequence[Event], size: int) -> list[tuple[bytes, int]]:
    return [(orjson.dumps({"events": [e.as_json() for e in b]}), len(b)) for b in batches(events, size)]


def mutation_bodies(events: Sequence[Event], size: int) -> list[tuple[bytes, int]]:
    return [
        (
            orjson.dumps({"query": TRACK_MUTATION, "variables": {"events": [e.as_graphql() for e in b]}}),
            len(b),
        )
        for b in batches(events, size)
    ]


# --- the floor ---------------------------------------------------------------------------


async def profile_ids(database: Database, emails: Sequence[str]) -> dict[str, str]:
    """Each e-mail's profile id, read from the store the way the gateway resolves it."""
    layout = await load_layout(database, Layout())
    keys = IdentityKeyRepository(PartitionedCollection(database, "identity_keys", layout.partitions))
    found: dict[str, str] = {}
    for email in emails:
        owner = await keys.owner(normalise_identity(IdentityType.EMAIL, email).key)
        if owner is None:
            raise BenchmarkError(f"{email} has no profile after phases A and B")
        found[email] = owner
    return found


def floor_documents(
    events: Sequence[Event], owners: dict[str, str], settings: Settings
) -> list[RawBSONDocument]:
    """The documents the gateway's event log holds for ``events``, encoded ahead of time."""
    now = datetime.now(UTC)
    rules = settings.event_rules
    options: CodecOptions[Document] = CodecOptions(tz_aware=True)
    documents: list[RawBSONDocument] = []
    for event in events:
        parsed = parse_event(event.as_json(), rules, now)
        document = event_document(parsed, owners[event.email], now)
        documents.append(RawBSONDocument(bson.encode(document, codec_options=options)))
    return documents


async def run_floor(
    client: AsyncMongoClient[Document], documents: Sequence[RawBSONDocument], options: Options
) -> Phase:
    """``insert_many`` from one writer into a fresh collection until done or out of time."""
    await client.drop_database(FLOOR_DATABASE)
    collection = client[FLOOR_DATABASE][FLOOR_COLLECTION]
    sent: list[Sent] = []
    report = Progress("floor", len(documents))
    began = time.perf_counter()
    written = 0
    note = ""
    for chunk in batches(documents, options.batch):
        if time.perf_counter() - began > options.floor_seconds:
            note = (
                f"stopped by --floor-seconds {options.floor_seconds:g} after {written:,} "
                f"of {len(documents):,} events"
            )
            break
        started = time.perf_counter() - began
        result = await collection.insert_many(chunk, ordered=True)
        if not result.acknowledged:
            raise BenchmarkError("an insert_many of the floor was not acknowledged")
        sent.append(Sent(started, time.perf_counter() - began, len(chunk), before=written))
        written += len(chunk)
        report.add(len(chunk))
    stored = await collection.count_documents({})
    if stored != written:
        raise BenchmarkError(f"the floor collection holds {stored} documents, {written} were written")
    return Phase("floor", len(documents), sent, note)


# --- the run -----------------------------------------------------------------------------


@dataclass
class Run:
    options: Options
    command: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    phases: list[Phase] = field(default_factory=list)
    floor: Phase | None = None
    layout: Layout | None = None
    events_per_profile: float = 0.0
    load_at_start: str = field(default_factory=lambda: load_average())
    load_at_end: str = "unknown"


def resent_note(phases: Sequence[Phase]) -> str:
    """What the section says of batches the gateway answered 5xx and that were sent again."""
    resent = [(phase.name, reason) for phase in phases for reason in phase.resent]
    if not resent:
        return ""
    reasons = sorted({reason.split(": ", 1)[-1][:160] for _, reason in resent})
    return (
        f", {len(resent)} batch(es) after being sent again: the gateway answered 5xx "
        f"({'; '.join(reasons)}), and each was sent again after {RESEND_AFTER_SECONDS:.0f} s as a "
        "tracking client does (its event ids make that safe: events already logged came back as "
        "duplicates)"
    )


async def benchmark(gateway: Gateway, run: Run) -> None:
    options = run.options
    factory = EventFactory(options.seed, options.profiles, run.started)
    settings = Settings()
    progress(f"generating {options.events:,} + {options.mutation_events:,} events")
    rest_events = factory.events("a", options.events)
    mutation_events = factory.events("b", options.mutation_events)
    rest_bodies = track_bodies(rest_events, options.batch)
    graphql_bodies = mutation_bodies(mutation_events, options.batch)
    limits = httpx.Limits(max_connections=options.senders, max_keepalive_connections=options.senders)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, connect=30.0)
    async with httpx.AsyncClient(base_url=gateway.url, limits=limits, timeout=timeout) as http:
        http.headers["authorization"] = f"Bearer {await create_ingest_key(http, gateway.admin_key)}"
        progress(f"phase A: {options.events:,} events through POST /v1/track")
        run.phases.append(await send("POST /v1/track", rest_bodies, post_track, http, options.senders))
        progress(f"  {run.phases[-1].rate:.1f} events/s")
        if mutation_events:
            progress(f"phase B: {options.mutation_events:,} events through the track mutation")
            run.phases.append(
                await send("track mutation", graphql_bodies, post_mutation, http, options.senders)
            )
            progress(f"  {run.phases[-1].rate:.1f} events/s")
    client: AsyncMongoClient[Document] = AsyncMongoClient(gateway.store_uri(), tz_aware=True)
    try:
        database = client[settings.database]
        run.layout = await load_layout(database, Layout())
        logged = [*rest_events, *mutation_events]
        emails = sorted({event.email for event in logged})
        run.events_per_profile = len(logged) / len(emails)
        progress("floor: building the event log's documents of phases A and B")
        documents = floor_documents(logged, await profile_ids(database, emails), settings)
        progress(f"floor: insert_many of {len(documents):,} documents (at most {options.floor_seconds:g} s)")
        run.floor = await run_floor(client, documents, options)
        run.load_at_end = load_average()
        progress(f"  {run.floor.rate:.1f} events/s over {run.floor.events:,} events")
        await client.drop_database(FLOOR_DATABASE)
    finally:
        await client.close()


# --- output ------------------------------------------------------------------------------


def ratio(value: float) -> str:
    return f"{value:.0%}"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def stretches(run: Run) -> list[tuple[Phase, FloorStretch]]:
    """Each gateway phase with the floor over the same stretch of the log (phase B's events were
    logged after phase A's, and the floor writes them in the same order)."""
    assert run.floor is not None, "the floor runs before the report"
    model = FloorModel.fit(run.floor)
    paired, start = [], 0
    for phase in run.phases:
        paired.append((phase, FloorStretch.of(run.floor, model, start, start + phase.events)))
        start += phase.events
    return paired


def share(phase: Phase, floor: FloorStretch, batch: int) -> tuple[bool, str]:
    """Whether the gateway sustained ``SHARE_TARGET`` of the floor's events/s, and how that is known."""
    if floor.complete:
        value = phase.rate / floor.measured.rate if floor.measured.rate else 0.0
        return value >= SHARE_TARGET, (
            f"{ratio(value)} ({rate(phase.rate)} / {rate(floor.measured.rate)} events/s, both measured)"
        )
    bound = phase.rate / floor.upper_bound if floor.upper_bound else 0.0
    text = (
        f"at least {ratio(bound)} ({rate(phase.rate)} events/s against a floor of at most "
        f"{rate(floor.upper_bound)}, {floor.bound_basis})"
    )
    estimate = floor.rate(batch)
    if estimate:
        text += (
            f"; about {ratio(phase.rate / estimate)} against the extrapolated floor "
            f"({rate(estimate)} events/s)"
        )
    return bound >= SHARE_TARGET, text


def log_layout(layout: Layout) -> str:
    if layout.event_segment_size is None:
        return "the event log in one collection (not segmented)"
    return f"the event log in segments of {layout.event_segment_size:,} documents"


def floor_description(floor: Phase, model: FloorModel | None, batch: int) -> str:
    text = (
        "the documents the event log wrote in phases A and B, in that order (`event_document("
        "parse_event(...))` with the real profile ids, BSON-encoded ahead of time), `insert_many`-ed in "
        f"batches of {batch} by one writer into one fresh collection without secondary indexes, in "
        "another database of the same running store, after both phases. Each phase is compared with the "
        "floor over the same stretch of the log. "
    )
    if floor.complete:
        return text + f"It wrote all {floor.events:,} events."
    text += floor.note[0].upper() + floor.note[1:] + "; "
    if model is None:
        return text + "too few batches to extrapolate the rest."
    return text + (
        "the rest (marked ~) is extrapolated from a least-squares fit of the measured batches: "
        f"{model.fixed * 1000:.1f} ms + {model.per_document * 1e6:.2f} µs x documents already in the "
        "collection, per batch."
    )


def render(run: Run) -> str:
    options, floor = run.options, run.floor
    assert floor is not None, "the floor runs before the report"
    model = FloorModel.fit(floor)
    layout = run.layout or Layout()
    paired = stretches(run)
    when = run.started.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Ingestion: events per second through the gateway",
        "",
        f"- Run {when} on {machine()}; {gateway_versions()}; load average "
        f"{run.load_at_start} at the start, {run.load_at_end} at the end of the floor (other work on the "
        "machine slows every figure).",
        f"- Command: `{run.command}`",
        f"- Gateway: `profilegate serve` with {options.workers} worker(s) and its embedded store (mongoeco "
        "SQLite engine in its own process) in a fresh data directory; profiles and identity keys over "
        f"{layout.partitions} partitions, {log_layout(layout)}"
        + ("" if options.event_segment_size is None else " (set by `--event-segment-size`)")
        + ". The benchmark client, the gateway and the store share the machine.",
        f"- Events: {options.events:,} through `POST /v1/track` (phase A), then {options.mutation_events:,} "
        f"new ones through the `track` mutation (phase B), in batches of {options.batch} from "
        f"{options.senders} concurrent HTTP senders (httpx, keep-alive), over {options.profiles:,} customers "
        f"addressed by e-mail (skewed activity, {run.events_per_profile:.1f} events per customer in all); "
        "~70% product views, 14% adds to cart, 7% checkouts, 6% orders, 3% returns; web, app and store; "
        f"times within the last {WINDOW_DAYS} days (seed {options.seed}). Profiles are created by "
        f"their first event. Every event was accepted{resent_note(run.phases)}.",
        f"- Floor: {floor_description(floor, model, options.batch)}",
        "",
        "| path | events | events/s | first tenth | last tenth | last / first |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    tenth_rows: list[tuple[str, list[float], str]] = []
    for phase, stretch in paired:
        tenths = phase.tenths()
        lines.append(
            f"| {phase.name} | {phase.events:,} | {rate(phase.rate)} | {rate(tenths[0])} | "
            f"{rate(tenths[-1])} | {ratio(phase.steadiness)} |"
        )
        tenth_rows.append((phase.name, tenths, ""))
        label = f"floor, the same stretch (log documents {stretch.start + 1:,}-{stretch.end:,})"
        mark = "" if stretch.complete else "~"
        floor_tenths = stretch.tenths(options.batch)
        first, last = (floor_tenths[0], floor_tenths[-1]) if floor_tenths else (None, None)
        steadiness = ratio(last / first) if first and last else "-"
        cells = [rate(stretch.rate(options.batch)), rate(first), rate(last), steadiness]
        lines.append(
            f"| {label} | {stretch.events:,} | "
            + " | ".join(cell if cell == "-" else mark + cell for cell in cells)
            + " |"
        )
        tenth_rows.append((label, floor_tenths, mark))
        if not stretch.complete and stretch.measured.sent:
            lines.append(
                f"| floor, measured part of that stretch | {stretch.measured.events:,} | "
                f"{rate(stretch.measured.rate)} | - | - | - |"
            )
    lines += [
        "",
        "Events/s in each tenth (a batch's events count as answered evenly while it was in flight; "
        "~ extrapolated):",
        "",
        "| path | " + " | ".join(str(tenth) for tenth in range(1, TENTHS + 1)) + " |",
        "|---|" + "---:|" * TENTHS,
    ]
    for name, tenths, mark in tenth_rows:
        cells = [mark + rate(value) for value in tenths] + ["-"] * (TENTHS - len(tenths))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += notes(run, layout)
    lines += [
        "",
        f"Targets (the gateway sustains >= {SHARE_TARGET:.0%} of the floor's events/s; its last tenth "
        f"runs at >= {STEADY_TARGET:.0%} of its first):",
        "",
    ]
    results = []
    for phase, stretch in paired:
        passed, text = share(phase, stretch, options.batch)
        lines.append(f"- {phase.name}, share of the floor: **{verdict(passed)}**, {text}.")
        steady = phase.steadiness >= STEADY_TARGET
        lines.append(
            f"- {phase.name}, last tenth / first tenth over {phase.events:,} events: "
            f"**{verdict(steady)}**, {ratio(phase.steadiness)}."
        )
        figure, share_target = text.split(" (")[0], f">= {SHARE_TARGET:.0%}"
        results.append(
            TargetResult(f"{phase.name}: share of the floor's events/s", figure, share_target, passed)
        )
        operation = f"{phase.name}: last tenth / first tenth of {phase.events:,} events"
        steady_target = f">= {STEADY_TARGET:.0%}"
        results.append(TargetResult(operation, ratio(phase.steadiness), steady_target, steady))
    lines += ["", *target_lines(results)]
    return "\n".join(lines) + "\n"


def notes(run: Run, layout: Layout) -> list[str]:
    lines: list[str] = []
    senders = run.options.senders
    bunched = [phase.name for phase in run.phases if len(phase.sent) < TENTHS * senders]
    if bunched:
        lines += [
            "",
            f"In {' and '.join(bunched)}, a tenth holds fewer batches than there are senders ({senders}): "
            "its rate is mostly that of the concurrent batches it overlaps.",
        ]
    segment = layout.event_segment_size
    short = [phase.name for phase in run.phases if segment is not None and phase.events < TENTHS * segment]
    if short:
        lines += [
            "",
            f"In {' and '.join(short)}, a tenth is shorter than an event-log segment ({segment:,} "
            "documents), so a tenth's rate also depends on how full the segment it wrote into was.",
        ]
    return lines


def command_line(argv: Sequence[str] | None) -> str:
    arguments = list(sys.argv[1:] if argv is None else argv)
    return shlex.join([".venv/bin/python", "-m", "bench.ingest", *arguments])


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    run = Run(options, command_line(argv))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM as on Ctrl+C
    try:
        with running_gateway(options) as gateway:
            progress(f"gateway ready at {gateway.url}")
            try:
                asyncio.run(benchmark(gateway, run))
            except BenchmarkError:
                progress(f"--- the gateway's log, last lines:\n{gateway.log_tail()}")
                raise
    except KeyboardInterrupt:
        progress("interrupted: the gateway was stopped and its data removed")
        return 130
    except BenchmarkError as error:
        progress(f"error: {error}")
        return 1
    publish(render(run), options.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
