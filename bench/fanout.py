"""The change feed's fan-out: tracked events to GraphQL WebSocket subscribers in two gateway processes.

Starts gateway A (``python -m profilegate serve`` with ``PROFILEGATE_ENV=production``, one
worker, no access log, on a free port, in a process group of its own, with the embedded store it
starts in a temporary data directory) and gateway B, a second ``serve`` process on the same store
(``MONGODB_URI`` names A's store and ``PROFILEGATE_EMBEDDED_STORE_RUNNING=true``: no store of its
own). ``--subscribers`` WebSocket clients (``graphql-transport-ws``, the admin key, no
compression) subscribe to ``changes(kinds: [EVENT_TRACKED])``: ``--same-process`` of them on A,
where the events are tracked, the others on B, whose follower only learns of them by polling the
feed. Every subscriber must receive every event.

Once a warm-up event has reached every subscriber, a tracker posts product views of
``--customers`` customers to A's ``POST /v1/track``, one event per request, at ``--rate`` events/s
for ``--seconds`` (open loop: each request leaves on schedule, whether or not the one before was
answered), with an ``INGEST`` key. Then, unless ``--no-burst``, ``--burst-events`` more from
``--burst-senders`` concurrent senders of one HTTP client, each posting its next request (of
``--burst-batch`` events, default 1) as soon as its last one is answered. For each event the
tracker records when its request left and when the answer (HTTP 200, accepted) arrived; each
subscriber when the event reached it. Latency is receipt - answer; it is negative when the change
beats the HTTP answer, and is reported as measured.

Subscribers, tracker and clock are one asyncio process (uvloop), timed with ``time.perf_counter``;
its CPU share and its event loop's lag are measured, since an overloaded client delays receipts.

Prints a Markdown section to stdout and writes nothing unless ``--write PATH`` is given, which
replaces the section in that file, or appends it. Progress goes to stderr. Both gateways and the
data are removed at the end, also on errors, Ctrl+C and SIGTERM.

    .venv/bin/python -m bench.fanout [--subscribers 100] [--rate 5] [--seconds 60] [--write BENCHMARKS.md]
"""

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import shlex
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.gateway import BenchmarkError, Gateway, create_api_key, progress, running_gateway, sharing_gateway
from bench.ingest import PRICES, Event
from bench.machine import TargetResult, gateway_versions, load_average, machine, publish, target_lines
from bench.store_scale import CATEGORIES
from profilegate.domain.events import Channel, EventType
from profilegate.service.feed import FeedRules
from profilegate.settings import Settings

HEADING = "## Change feed: fan-out"
PROTOCOL = Subprotocol("graphql-transport-ws")
CHANGES = (
    "subscription($after: String, $kinds: [ChangeKind!], $segment: String) { "
    "changes(after: $after, kinds: $kinds, segment: $segment) { cursor kind at profileId payload } }"
)
SAME, OTHER = "same process", "other process"
TARGET_MS = {SAME: 100.0, OTHER: 1000.0}  # p99 of receipt - answer, steady phase
STEADY, BURST = "steady", "burst"
CATALOGUE_SIZE = 200
REQUEST_TIMEOUT_SECONDS = 60.0
WARMUP_ATTEMPTS = 20
WARMUP_WAIT_SECONDS = 3.0
SETTLE_POLL_SECONDS = 0.05
LAG_TICK_SECONDS = 0.01
PROGRESS_SECONDS = 10.0
CLIENT_BUSY_SHARE = 0.7  # of one CPU: above this the client may delay its own receipts
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --- options -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    subscribers: int
    same_process: int
    rate: float
    seconds: float
    customers: int
    burst: bool
    burst_events: int
    burst_senders: int
    burst_batch: int
    poll_seconds: float | None
    settle_seconds: float
    seed: int
    write: Path | None


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description="Change-feed fan-out: tracked events to WebSocket subscribers of two gateway processes.",
    )
    add = parser.add_argument
    add("--subscribers", type=int, default=100, help="WebSocket subscribers in all (default 100)")
    add("--same-process", type=int, default=None, help="of them on gateway A (default half)")
    add("--rate", type=float, default=5.0, help="events/s of the steady phase (default 5)")
    add("--seconds", type=float, default=60.0, help="duration of the steady phase (default 60)")
    add("--customers", type=int, default=300, help="customers the events are spread over (default 300)")
    add("--burst", action=argparse.BooleanOptionalAction, default=True, help="the burst phase (default on)")
    add("--burst-events", type=int, default=300, help="events of the burst phase (default 300)")
    add("--burst-senders", type=int, default=4, help="concurrent senders of the burst (default 4)")
    add("--burst-batch", type=int, default=1, help="events per request of the burst (default 1)")
    add("--poll-seconds", type=float, default=None, help="PROFILEGATE_FEED_POLL_SECONDS (default 0.5)")
    add("--settle-seconds", type=float, default=20.0, help="wait for late deliveries (default 20)")
    add("--seed", type=int, default=1, help="seed of the generated events (default 1)")
    add("--write", type=Path, default=None, help="also write the section into this file (replacing it)")
    args = parser.parse_args(argv)
    if args.same_process is None:
        args.same_process = args.subscribers // 2
    if min(args.subscribers, args.customers, args.burst_events, args.burst_senders, args.burst_batch) < 1:
        parser.error("need --subscribers, --customers and the --burst- numbers >= 1")
    if not 0 <= args.same_process <= args.subscribers:
        parser.error("--same-process must be between 0 and --subscribers")
    if min(args.rate, args.seconds, args.settle_seconds) <= 0:
        parser.error("need --rate, --seconds and --settle-seconds > 0")
    return Options(**{name: getattr(args, name) for name in Options.__dataclass_fields__})


def feed_rules(options: Options) -> FeedRules:
    """The feed settings both gateways run with: their defaults, and ``--poll-seconds``."""
    if options.poll_seconds is None:
        return Settings.model_construct().feed_rules
    return Settings.model_construct(feed_poll_seconds=options.poll_seconds).feed_rules


def gateway_settings(options: Options) -> dict[str, str]:
    settings = {"PROFILEGATE_ENV": "production", "PROFILEGATE_ACCESS_LOG": "false"}
    if options.poll_seconds is not None:
        settings["PROFILEGATE_FEED_POLL_SECONDS"] = str(options.poll_seconds)
    return settings


# --- events ------------------------------------------------------------------------------


class Events:
    """Product views of ``customers`` customers, each with an id unique in the run and the time it is made."""

    def __init__(self, customers: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.emails = [f"customer-{number}@example.com" for number in range(1, customers + 1)]
        self.catalogue = [
            (f"SKU-{number:05d}", self.rng.choice(CATEGORIES), self.rng.choice(PRICES))
            for number in range(1, CATALOGUE_SIZE + 1)
        ]
        self.made = 0

    def next(self, phase: str, count: int = 1) -> tuple[list[str], bytes]:
        """``count`` events' ids and the ``POST /v1/track`` body carrying them."""
        events = [self._event(phase) for _ in range(count)]
        return [event.id for event in events], orjson.dumps({"events": [event.as_json() for event in events]})

    def _event(self, phase: str) -> Event:
        self.made += 1
        sku, category, price = self.rng.choice(self.catalogue)
        properties = {"sku": sku, "category": category, "price": str(price), "currency": "EUR"}
        email = self.rng.choice(self.emails)
        at = datetime.now(UTC)
        return Event(
            f"fanout-{phase}-{self.made:06d}", EventType.PRODUCT_VIEW, at, Channel.WEB, email, properties
        )


@dataclass(frozen=True)
class Tracked:
    event_id: str
    sent: float
    answered: float


async def post_events(http: httpx.AsyncClient, event_ids: list[str], body: bytes) -> list[Tracked]:
    """One ``POST /v1/track`` request; fails unless it is answered 200 with every event accepted."""
    sent = time.perf_counter()
    response = await http.post("/v1/track", content=body, headers={"content-type": "application/json"})
    answered = time.perf_counter()
    if response.status_code != 200 or response.json().get("accepted") != len(event_ids):
        raise BenchmarkError(f"POST /v1/track answered {response.status_code}: {response.text[:500]}")
    return [Tracked(event_id, sent, answered) for event_id in event_ids]


async def gathered(start: Callable[[asyncio.TaskGroup], list[asyncio.Task[list[Tracked]]]]) -> list[Tracked]:
    """What the tasks ``start`` creates tracked (by the time they are done), in the order sent;
    the first failure as a BenchmarkError."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = start(group)
    except ExceptionGroup as failed:
        first = failed.exceptions[0]
        if isinstance(first, BenchmarkError):
            raise first from None
        raise BenchmarkError(f"a tracking request failed: {first!r}") from first
    return sorted((tracked for task in tasks for tracked in task.result()), key=lambda tracked: tracked.sent)


async def track_steadily(http: httpx.AsyncClient, events: Events, rate: float, count: int) -> list[Tracked]:
    """``count`` events, one per request, the n-th leaving n / ``rate`` seconds after the first
    (open loop)."""
    tasks: list[asyncio.Task[list[Tracked]]] = []
    every = max(1, round(rate * PROGRESS_SECONDS))

    async def schedule(group: asyncio.TaskGroup) -> None:
        began = time.perf_counter()
        for number in range(count):
            await asyncio.sleep(max(0.0, began + number / rate - time.perf_counter()))
            if number and number % every == 0:
                progress(f"  {STEADY}: {number:,}/{count:,} events sent")
            tasks.append(group.create_task(post_events(http, *events.next(STEADY))))

    def start(group: asyncio.TaskGroup) -> list[asyncio.Task[list[Tracked]]]:
        group.create_task(schedule(group))
        return tasks  # filled by schedule while the group runs

    return await gathered(start)


async def track_burst(http: httpx.AsyncClient, events: Events, options: "Options") -> list[Tracked]:
    """``--burst-events`` events in requests of ``--burst-batch`` from ``--burst-senders`` tasks,
    each posting its next request as soon as its last one is answered."""
    count, size = options.burst_events, options.burst_batch
    bodies = (events.next(BURST, min(size, count - done)) for done in range(0, count, size))

    async def sender() -> list[Tracked]:
        return [tracked for ids, body in bodies for tracked in await post_events(http, ids, body)]

    def start(group: asyncio.TaskGroup) -> list[asyncio.Task[list[Tracked]]]:
        return [group.create_task(sender()) for _ in range(options.burst_senders)]

    return await gathered(start)


# --- subscribers -------------------------------------------------------------------------


@dataclass
class Subscriber:
    """One WebSocket subscription: when each event's change reached it, and how it ended early."""

    group: str
    receipts: dict[str, float] = field(default_factory=dict)
    duplicates: Counter[str] = field(default_factory=Counter)
    ended: str | None = None

    def take(self, message: Mapping[str, Any], at: float) -> None:
        kind = message.get("type")
        if kind in ("error", "complete"):
            self.ended = f"{kind}: {orjson.dumps(message).decode()[:300]}"
            return
        if kind != "next":
            return
        payload = message.get("payload") or {}
        change = (payload.get("data") or {}).get("changes")
        if payload.get("errors") or not isinstance(change, dict):
            self.ended = f"an error: {orjson.dumps(payload).decode()[:300]}"
            return
        event_id = str(change["payload"]["eventId"])
        if event_id in self.receipts:
            self.duplicates[event_id] += 1
        else:
            self.receipts[event_id] = at

    def has(self, event_ids: set[str]) -> bool:
        return event_ids <= self.receipts.keys()


def websocket_url(gateway: Gateway) -> str:
    return gateway.url.replace("http", "ws", 1) + "/graphql"


async def open_subscription(stack: contextlib.AsyncExitStack, url: str, key: str) -> ClientConnection:
    """A connection acknowledged by the gateway, subscribed to the EVENT_TRACKED changes."""
    connection = await stack.enter_async_context(
        connect(
            url,
            subprotocols=[PROTOCOL],
            additional_headers={"authorization": f"Bearer {key}"},
            compression=None,
        )
    )
    await connection.send(orjson.dumps({"type": "connection_init", "payload": {}}).decode())
    ack = orjson.loads(await asyncio.wait_for(connection.recv(), REQUEST_TIMEOUT_SECONDS))
    if ack.get("type") != "connection_ack":
        raise BenchmarkError(f"{url} answered connection_init with {ack}")
    subscribe = {"query": CHANGES, "variables": {"kinds": ["EVENT_TRACKED"]}}
    await connection.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": subscribe}).decode())
    return connection


async def listen(connection: ClientConnection, subscriber: Subscriber) -> None:
    """Record every message's receipt until the connection closes; a close is recorded as an end."""
    try:
        async for raw in connection:
            at = time.perf_counter()
            message = orjson.loads(raw)
            if message.get("type") == "ping":
                await connection.send('{"type": "pong"}')
            else:
                subscriber.take(message, at)
    except ConnectionClosed:
        pass
    subscriber.ended = subscriber.ended or f"closed: {connection.close_code} {connection.close_reason}"


@contextlib.asynccontextmanager
async def listening(
    subscribers: Sequence[Subscriber], urls: Mapping[str, str], key: str
) -> AsyncIterator[None]:
    """Every subscriber connected and subscribed, its messages recorded while this is open."""
    async with contextlib.AsyncExitStack() as stack:
        connections = [await open_subscription(stack, urls[s.group], key) for s in subscribers]
        tasks = [asyncio.create_task(listen(c, s)) for c, s in zip(connections, subscribers, strict=True)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def settle(subscribers: Sequence[Subscriber], event_ids: set[str], seconds: float) -> bool:
    """Wait until every subscriber still open has every one of ``event_ids``; False after ``seconds``."""
    deadline = time.perf_counter() + seconds
    while not all(s.ended or s.has(event_ids) for s in subscribers):
        if time.perf_counter() >= deadline:
            return False
        await asyncio.sleep(SETTLE_POLL_SECONDS)
    return True


def ended(subscribers: Iterable[Subscriber]) -> list[Subscriber]:
    return [subscriber for subscriber in subscribers if subscriber.ended]


# --- the client's own load ---------------------------------------------------------------


class LoopLag:
    """How late the client's event loop wakes a task sleeping LAG_TICK_SECONDS: the delay an
    overloaded client would add to every receipt."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []

    async def run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_TICK_SECONDS)
            now = time.perf_counter()
            self.samples.append((now, (now - before - LAG_TICK_SECONDS) * 1000.0))

    def between(self, start: float, end: float) -> list[float]:
        return sorted(lag for at, lag in self.samples if start <= at <= end)


def group_cpu(group: int) -> dict[int, float]:
    """CPU seconds (user + system) of each process of process group ``group``, from /proc (Linux)."""
    found: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:
                found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


@dataclass(frozen=True)
class CpuSample:
    at: float
    seconds: dict[str, float]


def cpu_sample(first: Gateway, second: Gateway) -> CpuSample:
    """CPU seconds so far of the client, gateway A, A's store (the rest of A's group) and gateway B."""
    seconds = {"client": time.process_time()}
    if first.process is not None and second.process is not None:
        a, b = first.process.pid, second.process.pid
        ours, theirs = group_cpu(a), group_cpu(b)
        if a in ours and b in theirs:
            seconds["gateway A"] = ours[a]
            seconds["store"] = sum(used for pid, used in ours.items() if pid != a)
            seconds["gateway B"] = sum(theirs.values())
    return CpuSample(time.perf_counter(), seconds)


def cpu_shares(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """Each part's CPU time between the samples, as a share of one CPU."""
    wall = max(after.at - before.at, 1e-9)
    return {name: (after.seconds[name] - used) / wall for name, used in before.seconds.items()}


# --- phases ------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest rank of ``ordered`` (sorted); NaN when empty."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


@dataclass(frozen=True)
class Delivery:
    """What one group of subscribers received of a phase's events."""

    name: str
    subscribers: int
    expected: int
    latencies_ms: list[float]  # sorted: receipt - answer
    duplicates: int
    span: float  # seconds from the phase's first request to the group's last receipt

    @property
    def deliveries(self) -> int:
        return len(self.latencies_ms)

    @property
    def missing(self) -> int:
        return self.expected - self.deliveries

    @property
    def early(self) -> int:
        return sum(1 for latency in self.latencies_ms if latency < 0)

    @property
    def rate(self) -> float:
        return self.deliveries / self.span if self.span > 0 else math.nan

    def p(self, share: float) -> float:
        return percentile(self.latencies_ms, share)


def delivery(name: str, members: Sequence[Subscriber], tracked: Sequence[Tracked]) -> Delivery:
    first_sent = min(t.sent for t in tracked)
    latencies: list[float] = []
    last = first_sent
    for subscriber in members:
        for t in tracked:
            at = subscriber.receipts.get(t.event_id)
            if at is not None:
                latencies.append((at - t.answered) * 1000.0)
                last = max(last, at)
    duplicates = sum(s.duplicates[t.event_id] for s in members for t in tracked)
    expected = len(members) * len(tracked)
    return Delivery(name, len(members), expected, sorted(latencies), duplicates, last - first_sent)


@dataclass(frozen=True)
class Phase:
    name: str
    title: str
    tracked: list[Tracked]
    groups: list[Delivery]
    cpu: dict[str, float]
    lag_ms: list[float]
    settled: bool
    ended: list[str]

    @property
    def answer_ms(self) -> list[float]:
        return sorted((t.answered - t.sent) * 1000.0 for t in self.tracked)

    @property
    def answered_rate(self) -> float:
        span = max(t.answered for t in self.tracked) - min(t.sent for t in self.tracked)
        return len(self.tracked) / span if span > 0 else math.nan

    @property
    def complete(self) -> bool:
        return all(group.missing == 0 and group.duplicates == 0 for group in self.groups)

    def group(self, name: str) -> Delivery:
        return next(group for group in self.groups if group.name == name)


@dataclass
class Bench:
    """What the phases share: the gateways, the tracker's client, the subscribers."""

    options: Options
    first: Gateway
    second: Gateway
    http: httpx.AsyncClient
    events: Events
    subscribers: list[Subscriber]
    lag: LoopLag

    def members(self, group: str) -> list[Subscriber]:
        return [subscriber for subscriber in self.subscribers if subscriber.group == group]


async def run_phase(bench: Bench, name: str, title: str, sending: Awaitable[list[Tracked]]) -> Phase:
    """Send a phase's events, wait for their deliveries, and measure what reached whom."""
    before = cpu_sample(bench.first, bench.second)
    tracked = await sending
    after = cpu_sample(bench.first, bench.second)
    progress(f"  {name}: {len(tracked):,} events answered; waiting for the deliveries")
    settled = await settle(bench.subscribers, {t.event_id for t in tracked}, bench.options.settle_seconds)
    groups = [
        delivery(group, bench.members(group), tracked) for group in (SAME, OTHER) if bench.members(group)
    ]
    if len(groups) > 1:
        groups.append(delivery("all", bench.subscribers, tracked))
    return Phase(
        name,
        title,
        tracked,
        groups,
        cpu_shares(before, after),
        bench.lag.between(before.at, after.at),
        settled,
        [f"{s.group}: {s.ended}" for s in ended(bench.subscribers)],
    )


async def steady_phase(bench: Bench) -> Phase:
    options = bench.options
    count = max(1, round(options.rate * options.seconds))
    progress(f"steady: {count:,} events at {options.rate:g} events/s to gateway A")
    title = f"Steady: {options.rate:g} events/s for {options.seconds:g} s"
    return await run_phase(
        bench, STEADY, title, track_steadily(bench.http, bench.events, options.rate, count)
    )


async def burst_phase(bench: Bench) -> Phase:
    options = bench.options
    title = f"Burst: {options.burst_events:,} events {requests_text(options.burst_batch)} from "
    title += senders_text(options.burst_senders)
    progress(title.lower())
    sending = track_burst(bench.http, bench.events, options)
    return await run_phase(bench, BURST, title, sending)


async def warm_up(bench: Bench) -> int:
    """Track events until one reaches every subscriber: all subscriptions are live. The attempts."""
    for attempt in range(1, WARMUP_ATTEMPTS + 1):
        event_ids, body = bench.events.next("warmup")
        await post_events(bench.http, event_ids, body)
        reached = await settle(bench.subscribers, set(event_ids), WARMUP_WAIT_SECONDS)
        if failed := ended(bench.subscribers):
            raise BenchmarkError(f"{len(failed)} subscriptions ended during the warm-up: {failed[0].ended}")
        if reached:
            return attempt
    raise BenchmarkError(f"no warm-up event reached every subscriber in {WARMUP_ATTEMPTS} attempts")


def plan(options: Options) -> list[Subscriber]:
    others = options.subscribers - options.same_process
    return [Subscriber(SAME) for _ in range(options.same_process)] + [
        Subscriber(OTHER) for _ in range(others)
    ]


async def measure(first: Gateway, second: Gateway, run: "Run") -> None:
    options = run.options
    timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS)
    async with httpx.AsyncClient(base_url=first.url, timeout=timeout) as http:
        key = await create_api_key(http, first.admin_key, "INGEST", "fanout-benchmark")
        http.headers["authorization"] = f"Bearer {key}"
        urls = {SAME: websocket_url(first), OTHER: websocket_url(second)}
        bench = Bench(
            options, first, second, http, Events(options.customers, options.seed), plan(options), LoopLag()
        )
        progress(f"connecting {options.subscribers} subscribers ({options.same_process} on A, the rest on B)")
        async with listening(bench.subscribers, urls, first.admin_key):
            ticking = asyncio.create_task(bench.lag.run())
            try:
                run.warmup_attempts = await warm_up(bench)
                progress(f"every subscriber received warm-up event {run.warmup_attempts}")
                run.phases.append(await steady_phase(bench))
                if options.burst:
                    run.phases.append(await burst_phase(bench))
            finally:
                ticking.cancel()
                await asyncio.gather(ticking, return_exceptions=True)


# --- the run -----------------------------------------------------------------------------

LOG_PROBLEM = re.compile(r"Traceback|\b(WARNING|ERROR|CRITICAL)\b")


@dataclass
class Run:
    options: Options
    command: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    load_at_start: str = field(default_factory=lambda: load_average())
    load_at_end: str = "unknown"
    warmup_attempts: int = 0
    phases: list[Phase] = field(default_factory=list)
    log_problems: dict[str, list[str]] = field(default_factory=dict)


def log_problems(gateway: Gateway) -> list[str]:
    """The lines of the gateway's log that are warnings, errors or tracebacks."""
    with contextlib.suppress(OSError):
        return [
            line for line in gateway.log.read_text(errors="replace").splitlines() if LOG_PROBLEM.search(line)
        ]
    return []


def check_logs(run: Run, gateways: Mapping[str, Gateway]) -> None:
    for name, gateway in gateways.items():
        run.log_problems[name] = problems = log_problems(gateway)
        if problems:
            progress(f"--- {name}'s log has {len(problems)} warning/error lines; its last lines:")
            progress(gateway.log_tail(60))


def benchmark(first: Gateway, run: Run) -> None:
    with sharing_gateway(first, 1, gateway_settings(run.options)) as second:
        progress(f"gateway B ready at {second.url}, on A's store")
        try:
            asyncio.run(measure(first, second, run), loop_factory=uvloop.new_event_loop)
        except BenchmarkError:
            progress(f"--- gateway B's log, last lines:\n{second.log_tail()}")
            raise
        finally:
            run.load_at_end = load_average()
            check_logs(run, {"gateway A": first, "gateway B": second})


# --- output ------------------------------------------------------------------------------


def requests_text(batch: int) -> str:
    return "one per request" if batch == 1 else f"in requests of {batch}"


def events_text(count: int) -> str:
    return "1 event" if count == 1 else f"{count:,} events"


def senders_text(senders: int) -> str:
    return "1 sender" if senders == 1 else f"{senders} concurrent senders"


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}"


def share(value: float) -> str:
    return f"{value:.0%}"


def group_label(name: str) -> str:
    return {SAME: "same process (A, where events are tracked)", OTHER: "other process (B, same store)"}.get(
        name, "all subscribers"
    )


def delivery_table(phase: Phase) -> list[str]:
    lines = [
        "| subscribers | count | deliveries | missing | duplicates | before the answer | p50 ms | p90 ms "
        "| p99 ms | max ms | delivered msgs/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for group in phase.groups:
        early = share(group.early / group.deliveries) if group.deliveries else "-"
        lines.append(
            f"| {group_label(group.name)} | {group.subscribers} | {group.deliveries:,} | {group.missing:,} | "
            f"{group.duplicates:,} | {early} | {ms(group.p(0.50))} | {ms(group.p(0.90))} | "
            f"{ms(group.p(0.99))} | {ms(group.p(1.0))} | {group.rate:,.0f} |"
        )
    return lines


def cpu_text(phase: Phase) -> str:
    parts = ", ".join(f"{name} {share(used)}" for name, used in phase.cpu.items())
    total = sum(phase.cpu.values())
    return (
        f"CPU while the events were sent (share of one CPU): {parts}; {share(total)} together. "
        f"The client's event loop woke {LAG_TICK_SECONDS * 1000:.0f} ms sleeps late by p99 "
        f"{ms(percentile(phase.lag_ms, 0.99))} ms, max {ms(percentile(phase.lag_ms, 1.0))} ms."
    )


def phase_text(phase: Phase, settle_seconds: float) -> list[str]:
    answers = phase.answer_ms
    lines = [
        f"### {phase.title}",
        "",
        f"Tracker: {len(phase.tracked):,} events answered at {phase.answered_rate:,.1f} events/s; "
        f"answer time (request sent to HTTP answer) p50 {ms(percentile(answers, 0.5))} ms, "
        f"p99 {ms(percentile(answers, 0.99))} ms, max {ms(percentile(answers, 1.0))} ms.",
        "",
        *delivery_table(phase),
        "",
        cpu_text(phase),
    ]
    if not phase.settled:
        lines += [
            "",
            f"Not every delivery had arrived {settle_seconds:g} s after the phase (`--settle-seconds`).",
        ]
    if phase.ended:
        lines += ["", f"{len(phase.ended)} subscriptions ended early; first: {phase.ended[0]}"]
    return [*lines, ""]


def targets_text(run: Run) -> list[str]:
    steady = next(phase for phase in run.phases if phase.name == STEADY)
    lines = [
        "Targets (steady phase: p99 of receipt - answer; every subscriber receives every event, once):",
        "",
    ]
    results = []
    for group in steady.groups:
        if group.name in TARGET_MS:
            target = TARGET_MS[group.name]
            passed = group.deliveries > 0 and group.p(0.99) < target
            label = upper_first(group_label(group.name))
            lines.append(f"- {label}: p99 < {target:,.0f} ms: **{verdict(passed)}**, {ms(group.p(0.99))} ms.")
            figure = f"{ms(group.p(0.99))} ms"
            results.append(TargetResult(f"{label}: p99", figure, f"< {target:,.0f} ms", passed))
    for phase in run.phases:
        totals = phase.groups[-1]
        missing = sum(g.missing for g in phase.groups if g.name in TARGET_MS)
        duplicates = sum(g.duplicates for g in phase.groups if g.name in TARGET_MS)
        lines.append(
            f"- Every event to every subscriber, once ({phase.name}): **{verdict(phase.complete)}**, "
            f"{missing:,} missing, {duplicates:,} duplicates of {totals.expected:,} deliveries."
        )
        figure = f"{missing:,} missing, {duplicates:,} duplicates of {totals.expected:,}"
        operation = f"Every event to every subscriber ({phase.name})"
        results.append(TargetResult(operation, figure, "each once", phase.complete))
    return [*lines, "", *target_lines(results)]


def client_note(run: Run) -> str:
    """Whether the one client process could have delayed its own receipts."""
    busiest = max(run.phases, key=lambda phase: phase.cpu["client"])
    used = busiest.cpu["client"]
    lag = percentile(busiest.lag_ms, 0.99)
    if used > CLIENT_BUSY_SHARE:
        return (
            f"The client process was busy ({share(used)} of one CPU in the {busiest.name} phase, event-loop "
            f"lag p99 {ms(lag)} ms): it delayed its own receipts, that phase's latencies are inflated by it."
        )
    return (
        f"One client process was enough: at most {share(used)} of one CPU ({busiest.name} phase), "
        f"event-loop lag p99 {ms(lag)} ms there."
    )


def poll_note(run: Run) -> list[str]:
    steady = next(phase for phase in run.phases if phase.name == STEADY)
    if not any(group.name == OTHER for group in steady.groups):
        return []
    other, poll = steady.group(OTHER), feed_rules(run.options).poll_seconds
    return [
        f"Gateway B learns of A's writes only by polling the feed every {poll:g} s, so its latencies "
        f"spread over about one poll interval (steady phase: p50 {ms(other.p(0.5))} ms, p99 "
        f"{ms(other.p(0.99))} ms); `--poll-seconds` trades that for more store reads."
    ]


def burst_note(run: Run) -> list[str]:
    """What set the burst's delivered msgs/s: tracking, or the fan-out falling behind it."""
    burst = next((phase for phase in run.phases if phase.name == BURST), None)
    if burst is None:
        return []
    everyone = burst.groups[-1]
    kept = everyone.rate / (burst.answered_rate * everyone.subscribers)
    servers = {name: used for name, used in burst.cpu.items() if name != "client"}
    busiest = max(servers, key=lambda name: servers[name]) if servers else None
    busy = (
        f"the busiest process was the {busiest}, at {share(servers[busiest])} of one CPU" if busiest else ""
    )
    figures = (
        f"{everyone.rate:,.0f} msgs/s = {kept:.0%} of {burst.answered_rate:,.1f} events/s x "
        f"{everyone.subscribers} subscribers"
    )
    if kept >= 0.9 and burst.complete:
        return [
            f"In the burst, deliveries kept pace with tracking ({figures}): the ceiling measured is the "
            f"gateway's tracking rate, events {requests_text(run.options.burst_batch)}"
            f"{f' ({busy})' if busy else ''}, not the fan-out's."
        ]
    return [f"In the burst, deliveries fell behind tracking ({figures}){f'; {busy}' if busy else ''}."]


def logs_text(run: Run) -> str:
    counts = [
        f"{name}: {len(lines)} warning/error line{'s' if len(lines) > 1 else ''}"
        if lines
        else f"{name}: no warnings or errors"
        for name, lines in run.log_problems.items()
    ]
    return "Server logs: " + "; ".join(counts) + "."


def settings_text(run: Run) -> str:
    rules = feed_rules(run.options)
    return (
        f"Feed settings of both: poll interval {rules.poll_seconds:g} s (`PROFILEGATE_FEED_POLL_SECONDS`), "
        f"subscriber queue {rules.queue_size:,} changes (`PROFILEGATE_FEED_QUEUE_SIZE`), hole wait "
        f"{rules.hole_seconds:g} s. The embedded store's feed is segmented, so there is no change stream: "
        "A's follower is woken by A's own writes, B's finds them by polling."
    )


def render(run: Run) -> str:
    options = run.options
    when = run.started.strftime("%Y-%m-%d %H:%M UTC")
    others = options.subscribers - options.same_process
    lines = [
        HEADING,
        "",
        f"- Run {when} on {machine()}; {gateway_versions()}, websockets {version('websockets')}, "
        f"httpx {version('httpx')}; load average {run.load_at_start} at the start, {run.load_at_end} at the "
        "end (other work on the machine slows every figure).",
        f"- Command: `{run.command}`",
        "- Gateways: A is `profilegate serve` (`PROFILEGATE_ENV=production`, 1 worker, uvloop and httptools, "
        "`PROFILEGATE_ACCESS_LOG=false`) with its embedded store (mongoeco SQLite engine in its own process) "
        "in a fresh data directory; B is a second `serve` process with the same settings and 1 worker on a "
        "port of its own, on A's store (`MONGODB_URI` set to it, `PROFILEGATE_EMBEDDED_STORE_RUNNING=true`). "
        + settings_text(run),
        f"- Subscribers: {options.subscribers} WebSocket connections (`graphql-transport-ws`, the websockets "
        "client without compression, the admin key in the handshake's `authorization` header), each "
        f"subscribed to `changes(kinds: [EVENT_TRACKED])`: {options.same_process} on A, {others} on B. A "
        f"warm-up event reached all of them before the measured phases ({run.warmup_attempts} warm-up "
        f"event{'s' if run.warmup_attempts != 1 else ''} tracked).",
        f"- Tracker: product views of {options.customers:,} customers `customer-N@example.com` (seed "
        f"{options.seed}; a profile is created by its customer's first event), posted to A's "
        "`POST /v1/track` with an `INGEST` key (one httpx client, keep-alive). Steady phase: one event "
        "per request, open loop: each request leaves on schedule whether or not the one before was "
        f"answered. Burst phase: {options.burst_senders} senders, each posting its next request "
        f"({events_text(options.burst_batch)} each) "
        "as soon as its last one is answered.",
        "- Timing: the tracker and every subscriber are one asyncio process (uvloop) on the same machine, "
        "timed with `time.perf_counter`. Latency = a subscriber's receipt of the event's change - the "
        "tracker's receipt of the HTTP answer (200, accepted); it is negative when the change arrived "
        'first (column "before the answer"), and is reported as measured. Delivered msgs/s = the group\'s '
        "deliveries / (its last receipt - the phase's first request).",
        "",
    ]
    for phase in run.phases:
        lines += phase_text(phase, options.settle_seconds)
    notes = [client_note(run), *poll_note(run), *burst_note(run), logs_text(run)]
    lines += [*targets_text(run), "", "Reading this run:", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def command_line(argv: Sequence[str] | None) -> str:
    arguments = list(sys.argv[1:] if argv is None else argv)
    return shlex.join([".venv/bin/python", "-m", "bench.fanout", *arguments])


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    run = Run(options, command_line(argv))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM as on Ctrl+C
    try:
        with running_gateway("profilegate-fanout-", 1, gateway_settings(options)) as first:
            progress(f"gateway A ready at {first.url}")
            try:
                benchmark(first, run)
            except BenchmarkError:
                progress(f"--- gateway A's log, last lines:\n{first.log_tail()}")
                raise
    except KeyboardInterrupt:
        progress("interrupted: both gateways were stopped and their data removed")
        return 130
    except BenchmarkError as error:
        progress(f"error: {error}")
        return 1
    publish(render(run), options.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
