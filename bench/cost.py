"""Cost per operation: store commands, bytes to and from the store, and the gateway's CPU.

An operation's latency on a MongoDB server is close to (store round trips x network round-trip
time) + the gateway's own CPU time, and a gateway core serves at most 1 / (CPU per operation)
of them (DESIGN sec. 8). Both parts are measured here, on any store:

- one embedded store (mongoeco's memory engine, in a process of its own) behind a byte-counting
  TCP relay in this process, so that the bytes each way are those on the wire;
- per layout (``mongodb``, then ``embedded``) a gateway (``python -m profilegate serve`` with
  ``PROFILEGATE_ENV=production``, one worker, in a process group of its own) on a database of
  its own, pointed at the relay; rate limits raised out of the way, the feed poll at 60 s;
- seeded through its API: the extensions of ``fixtures/extensions.json``, the tier policy of
  ``fixtures/tier_policy.json``, a segment, ``--customers`` customers with a few views and an
  order each (``POST /v1/track``), and ``STOREFRONT`` and ``INGEST`` keys;
- each operation repeated one request at a time; the store commands by name are the gateway's
  own ``profilegate_store_command_duration_seconds_count`` from ``/metrics``, diffed around the
  repetitions (less what a scrape itself sends), so they include what the operation makes the
  gateway do in the background (the feed follower woken by a write); the CPU is the gateway
  process's user + system time from ``/proc`` (not the store's, not this process's);
- the bare endpoint (``bench/bare_checkout.py``) on the same database, for the checkout CPU ratio.

The projection for a MongoDB server at a round-trip time: p50 ~= commands x RTT + gateway CPU,
operations/s per gateway core = 1 / CPU per operation. ``--profile`` also samples the gateway
with py-spy during the checkout, single-event and batched-event operations of the MongoDB layout
and lists where its CPU goes.

    .venv/bin/python -m bench.cost [--customers 100] [--repeat 60] [--profile] [--write BENCHMARKS.md]
"""

import argparse
import asyncio
import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from bench.checkout import define_extensions, graphql, publish_policy
from bench.gateway import (
    BenchmarkError,
    Gateway,
    Server,
    StorefrontKey,
    create_api_key,
    create_storefront_key,
    free_port,
    progress,
)
from bench.machine import TargetResult, gateway_versions, load_average, machine, publish, target_lines
from profilegate.embedded import EmbeddedStore

REPOSITORY = Path(__file__).resolve().parent.parent
POLICY = REPOSITORY / "fixtures" / "tier_policy.json"
LAYOUTS = ("mongodb", "embedded")
RTTS_MS = (0.3, 1.0)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
COMMAND_COUNT = "profilegate_store_command_duration_seconds_count"
BATCH = 100
BATCH_CUSTOMERS = 40
SEGMENT_KEY = "recent-buyers"
SEGMENT_RULE = "orders(last 365d) >= 1"
REQUEST_TIMEOUT_SECONDS = 120.0
PROFILED = ("checkout_known", "event_existing", "batch_existing")
PROFILE_RATE = 997
# The leaf frame of a sample taken while uvloop runs its own C code (I/O, or waiting for it).
LOOP_FRAME = "Runner.run ("
# Targets of the MongoDB layout: store commands per operation (per event for batches).
COMMAND_TARGETS = {
    "checkout_known": 1.0,
    "checkout_guest": 1.0,
    "event_existing": 5.0,
    "event_new": 7.0,
    "batch_existing": 1.5,
    "batch_new": 5.0,
}
# Gateway CPU per operation (per event for batches), milliseconds.
CPU_TARGETS_MS = {"checkout_known": 0.6, "event_existing": 2.0, "batch_existing": 0.4}

LOYALTY_QUERY = (
    "query Checkout($ref: ProfileRef!) { loyalty(ref: $ref) { tier { name } reason validUntil "
    "amountToNextTier { amount currency } benefits { key value } policyVersion } }"
)
IDENTIFY = """
mutation($anon: String, $identities: [IdentityInput!]!) {
  identify(anonymousId: $anon, identities: $identities) { __typename ... on Identified { created } }
}
"""
SET_EXTENSION = """
mutation($ref: ProfileRef!) {
  setExtension(ref: $ref, name: "vip", reason: "cost benchmark") { __typename }
}
"""
SAVE_SEGMENT = """
mutation($input: SaveSegmentInput!) { saveSegment(input: $input) { __typename } }
"""
MEMBERS = """
query($key: String!) { segment(key: $key) { members(first: 50) { profiles { id } nextCursor } } }
"""
TIER_DISTRIBUTION = "query { tierDistribution { policyVersion total tiers { tier profiles } } }"


# --- the byte-counting relay -------------------------------------------------------------


class CountingRelay:
    """Forwards TCP connections to the store and counts the bytes each way."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.to_store = 0
        self.from_store = 0
        self._ready = threading.Event()

    def start(self) -> None:
        threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True).start()
        if not self._ready.wait(30):
            raise BenchmarkError("the byte-counting relay did not start")

    def totals(self) -> tuple[int, int]:
        return self.to_store, self.from_store

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        self._ready.set()
        async with server:
            await server.serve_forever()

    async def _connection(self, client: asyncio.StreamReader, reply: asyncio.StreamWriter) -> None:
        store, request = await asyncio.open_connection(*self.target)
        await asyncio.gather(
            self._pump(client, request, self._sent), self._pump(store, reply, self._received)
        )

    def _sent(self, size: int) -> None:
        self.to_store += size

    def _received(self, size: int) -> None:
        self.from_store += size

    @staticmethod
    async def _pump(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, count: Callable[[int], None]
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await source.read(65536):
                count(len(chunk))
                sink.write(chunk)
                await sink.drain()
        sink.close()


# --- options and results -----------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    customers: int
    repeat: int
    batch_repeat: int
    admin_repeat: int
    profile: bool
    write: Path | None


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100, help="known customers seeded (default 100)")
    parser.add_argument("--repeat", type=int, default=60, help="repetitions of single operations")
    parser.add_argument("--batch-repeat", type=int, default=2, help="repetitions of 100-event batches")
    parser.add_argument("--admin-repeat", type=int, default=10, help="segment page, tierDistribution")
    parser.add_argument("--profile", action="store_true", help="sample the gateway with py-spy")
    parser.add_argument("--write", type=Path, help="append the section to this file")
    args = parser.parse_args(argv)
    if args.customers < BATCH_CUSTOMERS:
        parser.error(f"--customers must be at least {BATCH_CUSTOMERS}")
    return Options(
        args.customers, args.repeat, args.batch_repeat, args.admin_repeat, args.profile, args.write
    )


@dataclass(frozen=True)
class Cost:
    """What one operation cost on average, per operation (per event for batches)."""

    name: str
    label: str
    per_event: bool
    repetitions: int
    commands: dict[str, float]
    to_store: float
    from_store: float
    cpu_ms: float

    @property
    def total_commands(self) -> float:
        return sum(self.commands.values())

    def p50_ms(self, rtt_ms: float) -> float:
        return self.total_commands * rtt_ms + self.cpu_ms


@dataclass
class LayoutRun:
    layout: str
    costs: list[Cost] = field(default_factory=list)
    bare: Cost | None = None
    profiles: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    profile_groups: dict[str, list[tuple[str, float]]] = field(default_factory=dict)


# --- one operation -----------------------------------------------------------------------


type Send = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Operation:
    name: str
    label: str
    repetitions: int
    events: int  # per request; 0 for reads
    send: Send
    prepare: Send | None = None


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Client:
    """The gateway's HTTP API with the benchmark's keys."""

    def __init__(self, http: httpx.AsyncClient, admin: str, metrics_token: str) -> None:
        self.http = http
        self.admin = admin
        self.metrics_token = metrics_token
        self.storefront = StorefrontKey("", "", "")
        self.ingest = ""
        self._proofs: dict[str, str] = {}  # a shopper's proof, minted once as a page would

    def proof(self, identity: dict[str, str]) -> dict[str, str]:
        """The ``Shopper-Proof`` header for a storefront request about ``identity``."""
        if identity["type"] == "ANONYMOUS_ID":
            return {}
        key = f"{identity['type']}:{identity['value']}"
        if key not in self._proofs:
            self._proofs[key] = self.storefront.proof(identity)
        return {"shopper-proof": self._proofs[key]}

    async def track(self, events: list[dict[str, Any]]) -> None:
        response = await self.http.post(
            "/v1/track", json={"events": events}, headers={"authorization": f"Bearer {self.ingest}"}
        )
        body = response.json() if response.status_code == 200 else {}
        if body.get("accepted") != len(events):
            raise BenchmarkError(f"/v1/track answered {response.status_code}: {response.text[:500]}")

    async def query(
        self, key: str, document: str, variables: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Any:
        return await graphql(self.http, key, document, variables, headers)

    async def commands(self) -> Counter[str]:
        response = await self.http.get("/metrics", headers={"authorization": f"Bearer {self.metrics_token}"})
        counted: Counter[str] = Counter()
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == COMMAND_COUNT:
                    counted[sample.labels["command"]] += int(sample.value)
        return counted


async def scrape_overhead(client: Client) -> Counter[str]:
    """What one scrape of /metrics sends to the store itself (the feed head for the lag gauge)."""
    first = await client.commands()
    return await client.commands() - first


async def measure(
    client: Client, server: Server, relay: CountingRelay, operation: Operation, overhead: Counter[str]
) -> Cost:
    if operation.prepare is not None:
        for repetition in range(operation.repetitions):
            await operation.prepare(repetition)
    assert server.process is not None
    pid = server.process.pid
    before = await client.commands()
    bytes_before, cpu_before = relay.totals(), process_cpu(pid)
    for repetition in range(operation.repetitions):
        await operation.send(repetition)
    cpu_after, bytes_after = process_cpu(pid), relay.totals()
    sent = await client.commands() - before
    sent.subtract(overhead)
    return cost_of(
        operation,
        sent,
        (bytes_after[0] - bytes_before[0], bytes_after[1] - bytes_before[1]),
        cpu_after - cpu_before,
    )


def cost_of(operation: Operation, sent: Counter[str], moved: tuple[int, int], cpu: float) -> Cost:
    units = operation.repetitions * (operation.events if operation.events > 1 else 1)
    commands = {name: count / units for name, count in sorted(sent.items()) if count > 0}
    return Cost(
        name=operation.name,
        label=operation.label,
        per_event=operation.events > 1,
        repetitions=operation.repetitions,
        commands=commands,
        to_store=moved[0] / units,
        from_store=moved[1] / units,
        cpu_ms=cpu * 1000.0 / units,
    )


# --- the shop and its operations ---------------------------------------------------------


def email(kind: str, number: int) -> dict[str, Any]:
    return {"type": "EMAIL", "value": f"{kind}-{number}@example.com"}


class Shop:
    """The events and requests of the benchmark; every event id is new."""

    def __init__(self, client: Client, customers: int, now: datetime) -> None:
        self.client = client
        self.customers = customers
        self.now = now
        self._events = 0

    def event(
        self, identity: dict[str, Any] | None, kind: str = "product_view", **extra: Any
    ) -> dict[str, Any]:
        self._events += 1
        at = self.now - timedelta(minutes=self._events % 5000)
        event: dict[str, Any] = {
            "id": f"cost-{self._events}",
            "type": kind,
            "at": at.isoformat(),
            "channel": "web",
            "properties": {"sku": f"sku-{self._events % 300}", "category": "shoes"},
        }
        if identity is None:
            event.update(extra)
        else:
            event["identity"] = identity
        return event

    def visit(self, anonymous_id: str) -> dict[str, Any]:
        return self.event(None, anonymousId=anonymous_id)

    def order(self, identity: dict[str, Any], total: int) -> dict[str, Any]:
        event = self.event(identity, "order_completed")
        price = f"{total}.00"
        event["properties"] = {
            "orderId": f"order-{event['id']}",
            "total": price,
            "currency": "EUR",
            "items": [{"sku": "A1", "category": "shoes", "price": price, "quantity": 1}],
        }
        return event

    async def seed(self) -> None:
        events: list[dict[str, Any]] = []
        for number in range(self.customers):
            who = email("customer", number)
            events += [self.event(who) for _ in range(3)]
            events.append(self.order(who, 20 + (number * 37) % 900))
        for start in range(0, len(events), BATCH):
            await self.client.track(events[start : start + BATCH])

    def known(self, repetition: int) -> dict[str, Any]:
        return email("customer", repetition % self.customers)

    async def checkout(self, identity: dict[str, Any]) -> None:
        data = await self.client.query(
            self.client.storefront.token,
            LOYALTY_QUERY,
            {"ref": {"identity": identity}},
            self.client.proof(identity),
        )
        if not data["loyalty"]["reason"]:
            raise BenchmarkError(f"loyalty answered {data}")

    async def identify(self, anon: str, identity: dict[str, Any]) -> None:
        data = await self.client.query(self.client.admin, IDENTIFY, {"anon": anon, "identities": [identity]})
        if data["identify"]["__typename"] != "Identified":
            raise BenchmarkError(f"identify answered {data}")

    def operations(self, options: Options, run: str) -> list[Operation]:
        repeat, batches, admin = options.repeat, options.batch_repeat, options.admin_repeat
        once = min(repeat, self.customers)

        async def batch_existing(r: int) -> None:
            first = r * BATCH_CUSTOMERS
            await self.client.track(
                [self.event(self.known(first + n % BATCH_CUSTOMERS)) for n in range(BATCH)]
            )

        async def set_extension(r: int) -> None:
            data = await self.client.query(
                self.client.admin, SET_EXTENSION, {"ref": {"identity": self.known(r)}}
            )
            if data["setExtension"]["__typename"] != "ExtensionChanged":
                raise BenchmarkError(f"setExtension answered {data}")

        async def members(r: int) -> None:
            data = await self.client.query(self.client.admin, MEMBERS, {"key": SEGMENT_KEY})
            if not data["segment"]["members"]["profiles"]:
                raise BenchmarkError(f"the segment has no members: {data}")

        async def distribution(r: int) -> None:
            await self.client.query(self.client.admin, TIER_DISTRIBUTION, {})

        return [
            Operation("checkout_known", "checkout tier query, known customer", repeat, 0,
                      lambda r: self.checkout(self.known(r))),
            Operation("checkout_guest", "checkout, guest", repeat, 0,
                      lambda r: self.checkout(email(f"guest-{run}", r))),
            Operation("event_existing", "one event, existing profile", repeat, 1,
                      lambda r: self.client.track([self.event(self.known(r))])),
            Operation("event_new", "first event of a new customer", repeat, 1,
                      lambda r: self.client.track([self.event(email(f"new-{run}", r))])),
            Operation("batch_existing", f"batch of {BATCH} events, {BATCH_CUSTOMERS} existing customers",
                      batches, BATCH, batch_existing),
            Operation("batch_new", f"batch of {BATCH} new customers", batches, BATCH,
                      lambda r: self.client.track(
                          [self.event(email(f"fresh-{run}-{r}", n)) for n in range(BATCH)])),
            Operation("identify", "identify (new anonymous id, known customer)", once, 0,
                      lambda r: self.identify(f"anon-{run}-{r}", self.known(r))),
            Operation("merge", "merge (identify an anonymous profile as a known customer)", once, 0,
                      lambda r: self.identify(f"visitor-{run}-{r}", self.known(r + 1)),
                      prepare=lambda r: self.client.track([self.visit(f"visitor-{run}-{r}")])),
            Operation("set_extension", "setExtension", once, 0, set_extension),
            Operation("segment_members", "segment members, first page of 50", admin, 0, members),
            Operation("tier_distribution", "tierDistribution", admin, 0, distribution),
        ]  # fmt: skip


# --- gateways, the bare endpoint, py-spy ------------------------------------------------


def gateway_settings(layout: str, uri: str, metrics_token: str) -> dict[str, str]:
    settings = {
        "MONGODB_URI": uri,
        "PROFILEGATE_DATABASE": f"cost_{layout}",
        "PROFILEGATE_STORAGE_LAYOUT": layout,
        "PROFILEGATE_ENV": "production",
        "PROFILEGATE_METRICS_TOKEN": metrics_token,
        "PROFILEGATE_FEED_POLL_SECONDS": "60",
        "PROFILEGATE_LOG_LEVEL": "warning",
        "PROFILEGATE_ACCESS_LOG": "false",
    }
    for role in ("STOREFRONT", "INGEST", "ADMIN", "PARTNER"):
        settings[f"PROFILEGATE_RATE_LIMIT_{role}_PER_SECOND"] = "1000000"
        settings[f"PROFILEGATE_RATE_LIMIT_{role}_BURST"] = "1000000"
    if layout == "embedded":
        settings["PROFILEGATE_EMBEDDED_STORE_RUNNING"] = "true"
    return settings


@contextlib.contextmanager
def started(server: Server, ready: str = "/readyz") -> Iterator[Server]:
    try:
        server.start(cwd=REPOSITORY)
        server.wait_ready(ready)
        yield server
    finally:
        server.stop()


def bare_endpoint(uri: str, database: str, scratch: Path) -> Server:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "bench.bare_checkout",
        "--port",
        str(port),
        "--uri",
        uri,
        "--database",
        database,
    ]
    return Server("the bare endpoint", command, dict(os.environ), scratch / "bare.log", port)


@contextlib.contextmanager
def sampled(pid: int, output: Path) -> Iterator[None]:
    """py-spy sampling the process (on-CPU stacks only) while the block runs."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--rate", str(PROFILE_RATE), "--nonblocking",
               "--format", "raw", "--output", str(output)]  # fmt: skip
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)


def frame_group(frame: str) -> str:
    """The package a stack frame ("function (path:line)") runs in; ours by sub-package."""
    if frame.startswith(LOOP_FRAME):
        return "event loop (uvloop's C code)"
    parts = frame.rsplit("(", 1)[-1].split(":", 1)[0].split("/")
    if parts[0] == "profilegate" and len(parts) > 2:
        return f"profilegate.{parts[1]}"
    return parts[0].removesuffix(".py")


def profile_summary(raw: Path, top: int = 8) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The functions and packages the sampled CPU was spent in (leaf frames), as shares."""
    leaves: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.split(";")[-1].strip()
        leaves[leaf] += int(count)
        groups[frame_group(leaf)] += int(count)
    total = max(sum(leaves.values()), 1)
    return (
        [(name, n / total) for name, n in leaves.most_common(top) if not name.startswith(LOOP_FRAME)],
        [(name, n / total) for name, n in groups.most_common(top)],
    )


# --- the run -----------------------------------------------------------------------------


async def prepare_gateway(client: Client, shop: Shop) -> None:
    await define_extensions(client.http, client.admin)
    await publish_policy(client.http, client.admin, orjson.loads(POLICY.read_bytes()))
    client.storefront = await create_storefront_key(client.http, client.admin, "cost-storefront")
    client.ingest = await create_api_key(client.http, client.admin, "INGEST", "cost-ingest")
    segment = {"key": SEGMENT_KEY, "name": "Recent buyers", "rule": SEGMENT_RULE}
    saved = await client.query(client.admin, SAVE_SEGMENT, {"input": segment})
    if saved["saveSegment"]["__typename"] != "SegmentSaved":
        raise BenchmarkError(f"saveSegment answered {saved}")
    await shop.seed()


async def measure_layout(
    gateway: Gateway, relay: CountingRelay, options: Options, layout: str, scratch: Path, metrics_token: str
) -> tuple[LayoutRun, Shop, Client]:
    result = LayoutRun(layout)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, connect=30.0)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=timeout) as http:
        client = Client(http, gateway.admin_key, metrics_token)
        shop = Shop(client, options.customers, datetime.now(UTC) - timedelta(hours=1))
        progress(f"{layout}: seeding {options.customers} customers")
        await prepare_gateway(client, shop)
        for operation in shop.operations(options, "a"):  # warm-up: keys, caches, code paths
            if operation.prepare is not None:
                await operation.prepare(0)
            await operation.send(0)
        overhead = await scrape_overhead(client)
        for operation in shop.operations(options, "m"):
            progress(f"{layout}: {operation.label} x {operation.repetitions}")
            result.costs.append(await measure(client, gateway, relay, operation, overhead))
        if options.profile and layout == "mongodb":
            await profile_operations(client, gateway, shop, options, scratch, result)
    return result, shop, client


async def profile_operations(
    client: Client, gateway: Gateway, shop: Shop, options: Options, scratch: Path, result: LayoutRun
) -> None:
    assert gateway.process is not None
    for operation in shop.operations(options, "p"):
        if operation.name not in PROFILED:
            continue
        progress(f"profiling {operation.label}")
        raw = scratch / f"profile-{operation.name}.txt"
        with sampled(gateway.process.pid, raw):
            for repetition in range(operation.repetitions):
                await operation.send(repetition)
        result.profiles[operation.name], result.profile_groups[operation.name] = profile_summary(raw)


async def measure_bare(bare: Server, relay: CountingRelay, shop: Shop, repeat: int) -> Cost:
    async with httpx.AsyncClient(base_url=bare.url, timeout=REQUEST_TIMEOUT_SECONDS) as http:

        async def ask(r: int) -> None:
            body = {"query": LOYALTY_QUERY, "variables": {"ref": {"identity": shop.known(r)}}}
            response = await http.post("/loyalty", content=orjson.dumps(body))
            if response.status_code != 200:
                raise BenchmarkError(f"the bare endpoint answered {response.status_code}")

        operation = Operation("bare_checkout", "bare Starlette+PyMongo checkout", repeat, 0, ask)
        await ask(0)
        assert bare.process is not None
        pid = bare.process.pid
        bytes_before, cpu_before = relay.totals(), process_cpu(pid)
        for repetition in range(repeat):
            await ask(repetition)
        cpu_after, bytes_after = process_cpu(pid), relay.totals()
    moved = (bytes_after[0] - bytes_before[0], bytes_after[1] - bytes_before[1])
    # The bare endpoint has no /metrics: its commands are not counted, only its bytes and CPU.
    return cost_of(operation, Counter(), moved, cpu_after - cpu_before)


def run_layout(
    store_uri: str, relay: CountingRelay, options: Options, layout: str, scratch: Path
) -> LayoutRun:
    metrics_token = secrets.token_urlsafe(16)
    relayed = store_uri.replace(store_uri.split("//", 1)[1].split("/", 1)[0], f"127.0.0.1:{relay.port}")
    settings = gateway_settings(layout, relayed, metrics_token)
    gateway = Gateway(scratch / f"data-{layout}", 1, settings)
    with started(gateway):
        result, shop, _ = asyncio.run(measure_layout(gateway, relay, options, layout, scratch, metrics_token))
    with started(bare_endpoint(relayed, f"cost_{layout}", scratch), "/healthz") as bare:
        progress(f"{layout}: the bare endpoint x {options.repeat}")
        result.bare = asyncio.run(measure_bare(bare, relay, shop, options.repeat))
    return result


# --- the report --------------------------------------------------------------------------

PROFILE_HEADING = (
    "Where the gateway's time goes (py-spy samples of the gateway's thread, waiting included: a sample "
    "whose innermost frame is in uvloop's C code is the event loop waiting for or doing socket I/O; "
    "the rest is Python code running):"
)


def by_command(cost: Cost) -> str:
    return ", ".join(f"{count:.2f} {name}" for name, count in cost.commands.items()) or "none"


def cost_rows(costs: Sequence[Cost]) -> list[str]:
    rows = [
        "| operation | per | store commands | by command | bytes to store | bytes from store "
        "| gateway CPU | p50 at 0.3 ms RTT | p50 at 1 ms RTT | ops/s per gateway core |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for cost in costs:
        low, high = (cost.p50_ms(rtt) for rtt in RTTS_MS)
        rows.append(
            f"| {cost.label} | {'event' if cost.per_event else 'operation'} | {cost.total_commands:.2f} "
            f"| {by_command(cost)} | {cost.to_store:,.0f} | {cost.from_store:,.0f} | {cost.cpu_ms:.2f} ms "
            f"| {low:.2f} ms | {high:.2f} ms | {1000.0 / max(cost.cpu_ms, 1e-6):,.0f} |"
        )
    return rows


def targets(run: LayoutRun) -> list[tuple[TargetResult, str]]:
    """The MongoDB layout's targets, each with its figure as the verdict table shows it."""
    costs = {cost.name: cost for cost in run.costs}
    found = []
    for name, limit in COMMAND_TARGETS.items():
        measured, per = costs[name].total_commands, " per event" if costs[name].per_event else ""
        passed = measured <= limit + 1e-9
        target = f"<= {limit:g} store commands{per}"
        found.append(
            (TargetResult(costs[name].label, f"{measured:.2f}{per}", target, passed), f"{measured:.2f}")
        )
    for name, limit_ms in CPU_TARGETS_MS.items():
        measured, per = costs[name].cpu_ms, " per event" if costs[name].per_event else ""
        target = f"gateway CPU <= {limit_ms:g} ms{per}"
        shown = f"{measured:.2f} ms"
        found.append((TargetResult(costs[name].label, f"{shown}{per}", target, measured <= limit_ms), shown))
    return found


def target_rows(run: LayoutRun) -> list[str]:
    """The verdict table, and the targets as the summary of BENCHMARKS.md reads them."""
    found = targets(run)
    rows = ["| target | measured | verdict |", "|---|---:|---|"]
    rows += [f"| {t.operation}: {t.target} | {shown} | {t.verdict} |" for t, shown in found]
    return [*rows, "", *target_lines(t for t, _ in found)]


def bare_text(run: LayoutRun) -> str:
    if run.bare is None:
        return ""
    checkout = next(cost for cost in run.costs if cost.name == "checkout_known")
    return (
        f"Bare Starlette+PyMongo checkout (`bench/bare_checkout.py`, same database, same run): "
        f"{run.bare.cpu_ms:.2f} ms CPU, {run.bare.to_store:,.0f} bytes to and {run.bare.from_store:,.0f} "
        f"from the store per request; the gateway's checkout takes "
        f"**{checkout.cpu_ms / run.bare.cpu_ms:.1f}x** its CPU.\n"
    )


def profile_text(run: LayoutRun) -> list[str]:
    lines: list[str] = []
    for name, groups in run.profile_groups.items():
        label = next(cost.label for cost in run.costs if cost.name == name)
        shares = ", ".join(f"{group} {share:.0%}" for group, share in groups)
        functions = "; ".join(f"`{leaf}` {share:.0%}" for leaf, share in run.profiles[name][:5])
        lines += [f"- **{label}**: by package {shares}. Hottest functions: {functions}."]
    return lines


def render(runs: Sequence[LayoutRun], options: Options, command: str, seconds: float) -> str:
    lines = [
        "## Cost per operation (`bench/cost.py`)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}, load average {load_average()} at the end; "
        f"{gateway_versions()}. Command: `{command}` ({seconds / 60:.0f} min).",
        "",
        f"{options.customers} known customers (3 views and an order each, tracked through the API), one "
        "embedded store (memory engine) in its own process behind a byte-counting relay, one gateway per "
        "layout (`serve`, production settings, one worker). Store commands are the gateway's own "
        f"`{COMMAND_COUNT}` diffed around the repetitions (less a scrape's own), so they include what an "
        "operation makes the gateway do in the background (the feed follower woken by a write). Gateway "
        "CPU is the gateway process's user + system time (not the store's), at /proc's 10 ms resolution "
        "over all repetitions. Projection for a MongoDB server: p50 ~= commands x RTT + gateway CPU; "
        "ops/s per gateway core = 1 / CPU. Batches are per event.",
        "",
    ]
    for run in runs:
        title = (
            "MongoDB layout (production; the targets apply)" if run.layout == "mongodb" else "Embedded layout"
        )
        lines += [f"### {title}", "", *cost_rows(run.costs), "", bare_text(run)]
        if run.layout == "mongodb":
            lines += ["Targets (MongoDB layout):", "", *target_rows(run), ""]
        if run.profile_groups:
            lines += [PROFILE_HEADING, "", *profile_text(run), ""]
    return "\n".join(lines) + "\n"


def benchmark(options: Options, command: str) -> str:
    started_at = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="profilegate-cost-") as directory:
        scratch = Path(directory)
        with EmbeddedStore(data_dir=None, engine="memory") as store:
            assert store.uri is not None
            address = store.uri.split("//", 1)[1].split("/", 1)[0]
            host, port = address.rsplit(":", 1)
            relay = CountingRelay(host, int(port))
            relay.start()
            runs = [run_layout(store.uri, relay, options, layout, scratch) for layout in LAYOUTS]
    return render(runs, options, command, time.monotonic() - started_at)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    shown = ".venv/bin/python -m bench.cost " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    try:
        publish(benchmark(options, shown.strip()), options.write)
    except BenchmarkError as error:
        progress(f"cost: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
