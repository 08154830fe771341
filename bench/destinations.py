"""Destinations: deliveries per second, lag from the tracking answer to the receiver, store commands.

Two gateway processes on one embedded store (``profilegate serve``, one worker each, each in a
process group of its own): the first takes the tracking and runs no deliverer
(``PROFILEGATE_DESTINATIONS_DELIVER=false``), the second delivers every destination (its feed
poll at ``--poll-seconds``: changes made by the other process reach it by that poll, as on any
store without change streams). The receiver is an HTTP server in this process on loopback
(``PROFILEGATE_DESTINATIONS_ALLOW_PRIVATE`` lets the gateways send there) answering 200 at once.

``--profiles`` shoppers who granted ``ads`` are created first; each destination is sent
``EVENT_TRACKED`` for them (``maxWaitSeconds`` 0: a batch goes as soon as its first change is
read, ``maxBatch`` 100, 1,000 requests/s at most). Then, with no destination, one and ten:

- **steady tracking**: ``--rate`` single-event ``POST /v1/track`` requests a second for
  ``--seconds``; the lag of each event is the time from its tracking answer to the moment the
  receiver has it (per destination); p50 and p99;
- **a burst**: ``--burst`` events tracked in batches of 500 as fast as the gateway takes them;
  deliveries per second = messages received / time from the first to the last one (all
  destinations together, and per destination);
- **store commands**: the gateways' own ``profilegate_store_command_duration_seconds_count``
  from ``/metrics`` (as ``bench/cost.py`` counts them), diffed around each phase: the tracking
  process's commands per tracked event (the same with and without destinations: nothing on the
  request path knows about them), and the delivering process's commands per delivered batch,
  less its idle commands (feed polls, lease renewals) measured over a quiet stretch first.

    .venv/bin/python -m bench.destinations [--rate 20] [--seconds 10] [--burst 1000] [--write BENCHMARKS.md]
"""

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shlex
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.gateway import BenchmarkError, Gateway, progress, running_gateway, sharing_gateway
from bench.machine import TargetResult, gateway_versions, load_average, machine, publish, target_lines

COMMAND_COUNT = "profilegate_store_command_duration_seconds_count"
BATCH = 500
LAG_TARGET_SECONDS = 2.0
COMMANDS_TOLERANCE = 0.05  # tracking's commands per event with destinations: within 5% of without
UPSERT = """
mutation($email: String!) {
  upsertProfile(input: {identities: [{type: EMAIL, value: $email}],
                        consents: [{purpose: "ads", granted: true, source: "benchmark"}]}) { __typename }
}
"""
CREATE = """
mutation($input: DestinationInput!) {
  createDestination(input: $input) { __typename ... on InvalidInputError { field message } }
}
"""


# --- the receiver ------------------------------------------------------------------------


@dataclass
class Receiver:
    """Records, per destination, when each tracked event's message arrived and how many batches came."""

    port: int = 0
    arrived: dict[tuple[str, str], float] = field(default_factory=dict)
    batches: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, destination: str) -> str:
        return f"http://127.0.0.1:{self.port}/{destination}"

    def take(self, body: bytes) -> None:
        now = time.monotonic()
        batch = json.loads(body)
        with self.lock:
            self.batches[batch["destination"]] += 1
            for message in batch["messages"]:
                if "event" in message:
                    self.arrived.setdefault((batch["destination"], message["event"]["eventId"]), now)

    def count(self) -> int:
        with self.lock:
            return len(self.arrived)

    def total_batches(self) -> int:
        with self.lock:
            return sum(self.batches.values())


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            receiver.take(self.rfile.read(int(self.headers.get("content-length", "0"))))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


# --- talking to the gateways -------------------------------------------------------------


@dataclass
class Client:
    http: httpx.AsyncClient
    admin: str
    metrics_token: str

    async def graphql(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": document, "variables": variables},
            headers={"authorization": f"Bearer {self.admin}"},
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise BenchmarkError(f"GraphQL answered {response.status_code}: {response.text[:500]}")
        return dict(body["data"])

    async def track(self, events: list[dict[str, Any]]) -> None:
        response = await self.http.post(
            "/v1/track", json={"events": events}, headers={"authorization": f"Bearer {self.admin}"}
        )
        if response.status_code != 200 or response.json().get("accepted") != len(events):
            raise BenchmarkError(f"/v1/track answered {response.status_code}: {response.text[:500]}")

    async def commands(self) -> int:
        response = await self.http.get("/metrics", headers={"authorization": f"Bearer {self.metrics_token}"})
        return sum(
            int(sample.value)
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == COMMAND_COUNT
        )


def event(event_id: str, shopper: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "page_view",
        "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "channel": "web",
        "identity": {"type": "EMAIL", "value": f"shopper{shopper}@example.com"},
        "properties": {"url": "https://shop.example/coats"},
    }


# --- the phases --------------------------------------------------------------------------


@dataclass(frozen=True)
class Steady:
    destinations: int
    events: int
    tracking_commands: float  # of the tracking process, per event, less its idle rate
    tracking_seconds: float  # how long the tracking took
    lags: list[float]  # seconds, one per (destination, event)
    batches: int
    delivery_commands: float  # of the delivering process, per batch, less its idle rate
    missing: int

    def quantile(self, share: float) -> float:
        if not self.lags:
            return float("nan")
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class Burst:
    destinations: int
    messages: int
    seconds: float
    batches: int
    delivery_commands: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class Run:
    tracker: Client
    deliverer: Client
    receiver: Receiver
    options: argparse.Namespace
    destinations: list[str] = field(default_factory=list)
    idle_per_second: float = 0.0  # the delivering process's store commands a second, idle
    tracking_idle_per_second: float = 0.0  # the tracking process's
    sent: int = 0

    def next_id(self, phase: str) -> str:
        self.sent += 1
        return f"{phase}-{self.sent}"

    async def add_destinations(self, total: int) -> None:
        while len(self.destinations) < total:
            name = f"bench-{len(self.destinations)}"
            created = await self.tracker.graphql(
                CREATE,
                {
                    "input": {
                        "id": name,
                        "name": f"Benchmark receiver {len(self.destinations)}",
                        "url": self.receiver.url(name),
                        "send": {"kinds": ["EVENT_TRACKED"]},
                        "consentPurpose": "ads",
                        "maxBatch": 100,
                        "maxWaitSeconds": 0,
                        "ratePerSecond": 1000,
                    }
                },
            )
            if created["createDestination"]["__typename"] != "DestinationCreated":
                raise BenchmarkError(f"createDestination: {created}")
            self.destinations.append(name)
        await asyncio.sleep(3 * self.options.refresh_seconds + 1.0)  # the deliverer starts them

    async def measure_idle(self, seconds: float = 5.0) -> None:
        """Both processes' store commands a second with nothing to do (less the scrapes)."""
        tracking, delivering = await self.tracker.commands(), await self.deliverer.commands()
        await asyncio.sleep(seconds)
        self.tracking_idle_per_second = (await self.tracker.commands() - tracking - 1) / seconds
        self.idle_per_second = (await self.deliverer.commands() - delivering - 1) / seconds

    async def steady(self) -> Steady:
        options = self.options
        count = int(options.rate * options.seconds)
        answered: dict[str, float] = {}
        tracked_before, delivered_before = await self.tracker.commands(), await self.deliverer.commands()
        batches_before = self.receiver.total_batches()
        began = time.monotonic()
        for index in range(count):
            await asyncio.sleep(max(0.0, began + index / options.rate - time.monotonic()))
            event_id = self.next_id("steady")
            await self.tracker.track([event(event_id, index % options.profiles)])
            answered[event_id] = time.monotonic()
        tracked_after = await self.tracker.commands()
        tracking_seconds = time.monotonic() - began
        expected = {(name, event_id) for name in self.destinations for event_id in answered}
        await self.wait_for(expected)
        elapsed = time.monotonic() - began
        delivered_after = await self.deliverer.commands()
        with self.receiver.lock:
            lags = [
                self.receiver.arrived[key] - answered[key[1]]
                for key in expected
                if key in self.receiver.arrived
            ]
        batches = self.receiver.total_batches() - batches_before
        return Steady(
            destinations=len(self.destinations),
            events=count,
            tracking_commands=(
                tracked_after - tracked_before - 1 - self.tracking_idle_per_second * tracking_seconds
            )
            / count,
            tracking_seconds=tracking_seconds,
            lags=lags,
            batches=batches,
            delivery_commands=self.per_batch(delivered_after - delivered_before, elapsed, batches),
            missing=len(expected) - len(lags),
        )

    def per_batch(self, commands: int, seconds: float, batches: int) -> float:
        if not batches:
            return float("nan")
        return (commands - 1 - self.idle_per_second * seconds) / batches

    async def wait_for(self, expected: set[tuple[str, str]], within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self.receiver.lock:
                if expected <= self.receiver.arrived.keys():
                    return
            await asyncio.sleep(0.01)
        progress(
            f"  {len(expected - self.receiver.arrived.keys())} messages did not arrive in {within:.0f} s"
        )

    async def burst(self) -> Burst:
        options = self.options
        ids = [self.next_id("burst") for _ in range(options.burst)]
        delivered_before = await self.deliverer.commands()
        batches_before = self.receiver.total_batches()
        began = time.monotonic()
        for first in range(0, len(ids), BATCH):
            chunk = ids[first : first + BATCH]
            await self.tracker.track(
                [event(event_id, n % options.profiles) for n, event_id in enumerate(chunk)]
            )
        expected = {(name, event_id) for name in self.destinations for event_id in ids}
        await self.wait_for(expected, within=300.0)
        elapsed = time.monotonic() - began
        delivered_after = await self.deliverer.commands()
        with self.receiver.lock:
            times = [self.receiver.arrived[key] for key in expected if key in self.receiver.arrived]
        batches = self.receiver.total_batches() - batches_before
        return Burst(
            destinations=len(self.destinations),
            messages=len(times),
            seconds=max(times) - min(times) if times else 0.0,
            batches=batches,
            delivery_commands=self.per_batch(delivered_after - delivered_before, elapsed, batches),
        )


# --- the report --------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    baseline: Steady
    steady: list[Steady]
    bursts: list[Burst]


def targets(results: Results) -> list[TargetResult]:
    found = []
    for steady in results.steady:
        p99 = steady.quantile(0.99)
        found.append(
            TargetResult(
                f"Destinations: lag p99 from the tracking answer to the receiver, {steady.destinations} "
                f"destination{'s' if steady.destinations > 1 else ''}",
                f"{p99:.2f} s",
                f"< {LAG_TARGET_SECONDS:g} s, none missing",
                p99 < LAG_TARGET_SECONDS and steady.missing == 0,
            )
        )
    without = results.baseline.tracking_commands
    worst = max(steady.tracking_commands for steady in results.steady)
    found.append(
        TargetResult(
            "Destinations: tracking's store commands per event with 10 destinations",
            f"{worst:.2f} (without: {without:.2f})",
            f"unchanged (within {COMMANDS_TOLERANCE:.0%})",
            worst <= without * (1 + COMMANDS_TOLERANCE),
        )
    )
    return found


def section(results: Results, options: argparse.Namespace, command: str) -> str:
    slowest = max(results.steady, key=lambda steady: steady.tracking_seconds)
    steady_rows = "\n".join(
        f"| {s.destinations} | {s.events:,} | {s.tracking_seconds:.1f} | {s.tracking_commands:.2f} | "
        + (
            "- | - | - | - |"
            if not s.destinations
            else f"{s.quantile(0.5) * 1000:.0f} | {s.quantile(0.99) * 1000:.0f} | {s.batches:,} | "
            f"{s.delivery_commands:.1f} |"
        )
        for s in [results.baseline, *results.steady]
    )
    burst_rows = "\n".join(
        f"| {b.destinations} | {b.messages:,} | {b.seconds:.1f} | {b.per_second:,.0f} | "
        f"{b.per_second / b.destinations:,.0f} | {b.batches:,} | {b.delivery_commands:.1f} |"
        for b in results.bursts
    )
    verdicts = "\n".join(
        f"- {t.operation}: {t.figure} (target {t.target}): **{t.verdict}**" for t in targets(results)
    )
    return f"""## Destinations: deliveries per second, lag and store commands

{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; load average {load_average()} at the end;
{gateway_versions()}.
Command: `{command}`. Two `profilegate serve` processes (one worker each) on one embedded store
(SQLite engine): one takes the tracking and delivers nothing, the other delivers (feed poll every
{options.poll_seconds:g} s: changes made by the other process reach it by that poll). The receiver
is an HTTP server on loopback in the benchmark's process, answering 200 at once. Each destination is
sent `EVENT_TRACKED` of {options.profiles} shoppers who granted `ads`; `maxWaitSeconds` 0,
`maxBatch` 100, 1,000 requests/s at most. Store commands are the gateways' own
`{COMMAND_COUNT}`; the delivering process's are per delivered batch, less its idle
rate of {options.idle_rate:.1f} commands/s (feed polls, lease renewals), the tracking process's per event
less its idle rate of {options.tracking_idle_rate:.1f} commands/s, both measured first over 5 s; the
tracking process writes its shop rollups and polls the feed once a minute and keeps its key,
tier policy and segment caches for an hour, so that its commands are its requests' however long a
phase takes (a phase with ten destinations takes longer: see below).

Steady tracking: {options.rate:g} single-event `POST /v1/track` requests a second for {options.seconds:g} s;
lag = from the tracking answer to the receiver, per destination and event.

| destinations | events | tracking took s | tracking: store commands per event | lag p50 ms | lag p99 ms \
| batches delivered | delivery: store commands per batch |
|---|---|---|---|---|---|---|---|
{steady_rows}

"tracking took" is how long the {options.rate:g} requests a second took to send one after another
({results.baseline.tracking_seconds:.1f} s without a destination, {slowest.tracking_seconds:.1f} s with
{slowest.destinations}): the requests send the same store commands, but the deliverers' commands (one
batch per change per destination at `maxWaitSeconds` 0, each {slowest.delivery_commands:.0f} commands
or so) go to the same embedded store process, and here the store, both gateways, the receiver and
the benchmark share {os.cpu_count()} CPUs. A receiver that is slow or down costs tracking nothing; a
store busy with deliveries does. Larger batches (`maxWaitSeconds` above 0) send fewer of them.

A burst of {options.burst:,} events tracked in batches of {BATCH}: messages delivered per second from the
first to the last one.

| destinations | messages | seconds | deliveries/s (all) | deliveries/s per destination | batches \
| delivery: store commands per batch |
|---|---|---|---|---|---|---|
{burst_rows}

{verdicts}

{chr(10).join(target_lines(targets(results)))}
"""


# --- running it --------------------------------------------------------------------------


def settings(
    metrics_token: str, *, deliver: bool, poll_seconds: float, refresh_seconds: float
) -> dict[str, str]:
    found = {
        "PROFILEGATE_METRICS_TOKEN": metrics_token,
        "PROFILEGATE_LOG_LEVEL": "warning",
        "PROFILEGATE_ACCESS_LOG": "false",
        "PROFILEGATE_DESTINATIONS_DELIVER": "true" if deliver else "false",
        "PROFILEGATE_DESTINATIONS_ALLOW_PRIVATE": "true",
        "PROFILEGATE_DESTINATIONS_REFRESH_SECONDS": str(refresh_seconds),
        "PROFILEGATE_FEED_POLL_SECONDS": str(poll_seconds if deliver else 60),
    }
    if not deliver:
        # The tracking process's timed work out of the way, so that its commands are its requests'
        # however long a phase takes: rollups written once a minute, caches kept for an hour.
        found["PROFILEGATE_SHOP_ROLLUP_FLUSH_SECONDS"] = "60"
        found["PROFILEGATE_SHOP_ROLLUP_SILENT_SECONDS"] = "600"
        for cache in ("KEY", "TIER_POLICY", "SEGMENT"):
            found[f"PROFILEGATE_{cache}_CACHE_SECONDS"] = "3600"
    for role in ("ADMIN", "INGEST"):
        found[f"PROFILEGATE_RATE_LIMIT_{role}_PER_SECOND"] = "1000000"
        found[f"PROFILEGATE_RATE_LIMIT_{role}_BURST"] = "1000000"
    return found


async def run(options: argparse.Namespace, first: Gateway, second: Gateway, token: str) -> Results:
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=60.0) as tracking,
        httpx.AsyncClient(base_url=second.url, timeout=60.0) as delivering,
    ):
        with receiving() as receiver:
            running = Run(
                Client(tracking, first.admin_key, token),
                Client(delivering, second.admin_key, token),
                receiver,
                options,
            )
            progress(f"{options.profiles} shoppers granting ads")
            for shopper in range(options.profiles):
                await running.tracker.graphql(UPSERT, {"email": f"shopper{shopper}@example.com"})
            await running.tracker.track([event(running.next_id("warm"), n) for n in range(options.profiles)])
            progress("the delivering process idle")
            await running.measure_idle()
            options.idle_rate = running.idle_per_second
            options.tracking_idle_rate = running.tracking_idle_per_second
            progress("steady tracking, no destination")
            baseline = await running.steady()
            steady, bursts = [], []
            for total in (1, 10):
                await running.add_destinations(total)
                progress(f"steady tracking, {total} destination(s)")
                steady.append(await running.steady())
                progress(f"a burst of {options.burst:,} events, {total} destination(s)")
                bursts.append(await running.burst())
    return Results(baseline, steady, bursts)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.destinations", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rate", type=float, default=20.0, help="tracked events per second, steady phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each steady phase")
    parser.add_argument("--burst", type=int, default=1000, help="events of each burst")
    parser.add_argument("--profiles", type=int, default=40, help="shoppers the events are about")
    parser.add_argument("--poll-seconds", type=float, default=0.05, help="the delivering process's feed poll")
    parser.add_argument(
        "--refresh-seconds", type=float, default=0.5, help="how often it looks at destinations"
    )
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this file")
    options = parser.parse_args()
    token = secrets.token_urlsafe(16)
    tracking = settings(
        token, deliver=False, poll_seconds=options.poll_seconds, refresh_seconds=options.refresh_seconds
    )
    delivering = settings(
        token, deliver=True, poll_seconds=options.poll_seconds, refresh_seconds=options.refresh_seconds
    )
    command = "python -m bench.destinations " + shlex.join(sys.argv[1:])
    with (
        running_gateway("bench-destinations-", 1, tracking) as first,
        sharing_gateway(first, 1, delivering) as second,
    ):
        results = asyncio.run(run(options, first, second, token))
    publish(section(results, options, command), options.write)


if __name__ == "__main__":
    main()
