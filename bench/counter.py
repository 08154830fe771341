"""The ceiling of the counter document that orders the change feed and the logs.

Every write that changes profiles reserves its places in the feed with one ``findAndModify``
of ``$inc`` on one document in ``meta`` (``storage/places.py`` ``reserve``): all gateways
queue on that one document. This benchmark measures how many reservations per second one
document takes: ``--clients`` concurrent clients (each its own ``AsyncMongoClient`` with one
connection, as separate gateways would be) call ``reserve`` in a loop for ``--seconds`` after
an uncounted warm-up, once with one place per reservation (one changed profile) and once with
a block of ``--block`` places (a batch). Every command the clients send is counted through
pymongo's command monitoring (round trips per reservation), and at the end every place must
have been handed out exactly once.

By default it starts the embedded store as the gateway does (mongoeco's SQLite engine in a
process of its own, over the wire) in a temporary directory; ``--uri`` runs it against any
MongoDB instead (a database of its own, dropped at the end), ``--write-concern majority`` with
the write concern the feed uses on a replica set.

    .venv/bin/python -m bench.counter                                   # embedded store
    .venv/bin/python -m bench.counter --write BENCHMARKS.md
    .venv/bin/python -m bench.counter --uri "$MONGODB_URI" --write-concern majority
"""

import argparse
import asyncio
import contextlib
import math
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pymongo import AsyncMongoClient, WriteConcern, monitoring

from bench.gateway import progress
from bench.machine import gateway_versions, load_average, machine, publish
from profilegate.embedded import EmbeddedStore
from profilegate.storage.documents import Document
from profilegate.storage.places import handed_out, reserve

COUNTER = "bench"


@dataclass
class CommandCount(monitoring.CommandListener):
    """Commands sent to one database between ``since`` and ``until`` (perf_counter), by name."""

    database: str
    since: float = math.inf
    until: float = math.inf
    counts: dict[str, int] = field(default_factory=dict)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database and self.since <= time.perf_counter() < self.until:
            self.counts[event.command_name] = self.counts.get(event.command_name, 0) + 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass(frozen=True)
class Options:
    uri: str | None
    clients: list[int]
    block: int
    seconds: float
    warmup: float
    write_concern: str | None


@dataclass(frozen=True)
class Result:
    clients: int
    places: int
    latencies: list[float]
    seconds: float
    commands: dict[str, int]

    @property
    def reservations(self) -> int:
        return len(self.latencies)


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest rank of ``ordered`` (sorted); NaN when empty."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def write_concern(name: str | None) -> WriteConcern:
    if name is None:
        return WriteConcern()
    return WriteConcern(w="majority", j=True) if name == "majority" else WriteConcern(w=int(name))


async def client_loop(
    client: AsyncMongoClient[Document],
    options: Options,
    places: int,
    database: str,
    stop: float,
    start: float,
) -> tuple[list[float], list[int]]:
    """Reserve until ``stop``; the latencies and the places handed out from ``start`` on."""
    db = client.get_database(database, write_concern=write_concern(options.write_concern))
    latencies: list[float] = []
    handed: list[int] = []
    while (now := time.perf_counter()) < stop:
        last = await reserve(db["meta"], COUNTER, places)
        if start <= now:
            latencies.append(time.perf_counter() - now)
        handed.extend(range(last - places + 1, last + 1))
    return latencies, handed


async def measure(uri: str, options: Options, clients: int, places: int) -> Result:
    database = f"bench_counter_{uuid.uuid4().hex[:8]}"
    counting = CommandCount(database)
    connections: list[AsyncMongoClient[Document]] = [
        AsyncMongoClient(uri, maxPoolSize=1, event_listeners=[counting]) for _ in range(clients)
    ]
    try:
        await reserve(connections[0][database]["meta"], COUNTER, 1)  # the document exists before the race
        begin = time.perf_counter()
        start, stop = begin + options.warmup, begin + options.warmup + options.seconds
        counting.since, counting.until = start, stop
        loops = [client_loop(c, options, places, database, stop, start) for c in connections]
        outcomes = await asyncio.gather(*loops)
        counted = sum(len(latencies) for latencies, _ in outcomes)
        commands = dict(counting.counts)
        handed = sorted(place for _, places_of_client in outcomes for place in places_of_client)
        total = await handed_out(connections[0][database]["meta"], COUNTER)
        if handed != list(range(2, total + 1)):
            raise RuntimeError(f"places handed out twice or lost: {len(handed)} for a counter at {total}")
        latencies = sorted(latency for client_latencies, _ in outcomes for latency in client_latencies)
        assert len(latencies) == counted
        return Result(clients, places, latencies, options.seconds, commands)
    finally:
        await connections[0].drop_database(database)
        for connection in connections:
            await connection.close()


@contextlib.contextmanager
def store(uri: str | None) -> Iterator[str]:
    if uri is not None:
        yield uri
        return
    with (
        tempfile.TemporaryDirectory(prefix="profilegate-counter-") as directory,
        EmbeddedStore(data_dir=Path(directory), engine="sqlite") as embedded,
    ):
        assert embedded.uri is not None, "a started store has a URI"
        yield embedded.uri


def row(result: Result) -> str:
    per_second = result.reservations / result.seconds
    finds = result.commands.get("findAndModify", 0)
    others = sum(result.commands.values()) - finds
    trips = sum(result.commands.values()) / max(1, result.reservations)
    return (
        f"| {result.clients} | {result.places} | {result.reservations:,} | {per_second:,.0f} | "
        f"{per_second * result.places:,.0f} | {percentile(result.latencies, 0.5) * 1000:.2f} | "
        f"{percentile(result.latencies, 0.99) * 1000:.2f} | "
        f"{trips:.2f} ({finds:,} findAndModify, {others} other) |"
    )


PROJECTION = [
    "### Projection to MongoDB (assumptions, not measured here)",
    "",
    "One reservation is made per profile write that changes what the feed shows (each profile of a "
    "`POST /v1/track` batch, an identify, an extension change), one block of places for all the "
    "changes of that write. On MongoDB the update of one document is applied one at a time: "
    "concurrent `findAndModify`s of it conflict and the server retries them in turn. Assumed: a "
    "round trip of 0.3-1 ms between a gateway and the primary in one region, and `w: majority` "
    "adding one replication round trip (0.3-1 ms more) before the reply.",
    "",
    "- One client: 1 / (0.3-1 ms) = ~1,000-3,300 reservations/s with `w: 1`, ~500-1,700/s with "
    "`w: majority`.",
    "- Many clients (gateways, concurrent requests): their round trips and majority waits overlap "
    "(the document is not held while the write replicates), so the ceiling is the primary's time per "
    "update of one document. Assumed 20-100 us (the update, its oplog entry, conflict retries): "
    "~10,000-50,000 reservations/s, whatever the number of gateways. Measure it on the target "
    "cluster with `--uri ... --write-concern majority`.",
    "- Beyond that ceiling: see docs/mongodb.md (counters per partition, or blocks reserved per "
    "gateway process).",
    "",
]


def render(options: Options, results: list[Result], load_at_start: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = (
        "the embedded store as the gateway starts it (mongoeco SQLite engine in its own process, "
        "over the wire)"
        if options.uri is None
        else f"MongoDB at `--uri` with write concern {options.write_concern or 'default'}"
    )
    command = "`.venv/bin/python -m bench.counter --write BENCHMARKS.md`" if options.uri is None else ""
    lines = [
        "## Feed counter: reservations on one document",
        "",
        f"- Run {when} on {machine()}; {gateway_versions()}; load average {load_at_start} at the start, "
        f"{load_average()} at the end (other work on the machine slows every figure).",
        f"- Command: {command or '`.venv/bin/python -m bench.counter --uri ...`'}",
        f"- Store: {where}.",
        "- Each client is an `AsyncMongoClient` of its own with one connection, all in the benchmark's "
        f"one process (its event loop is part of what is measured); each calls `reserve` (one "
        f"`findAndModify` with `$inc` and upsert on one `meta` document) in a loop for "
        f"{options.seconds:g} s after an uncounted {options.warmup:g} s warm-up. Round trips: the "
        "commands the clients started in the counted seconds, per reservation started in them. "
        "Every place was handed out exactly once.",
        "",
        "| clients | places per reservation | reservations | reservations/s | places/s | p50 ms | p99 ms "
        "| round trips per reservation |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
        *(row(result) for result in results),
        "",
    ]
    if options.uri is None:
        lines += PROJECTION
    return "\n".join(lines)


async def run(options: Options) -> str:
    load_at_start = load_average()
    results: list[Result] = []
    with store(options.uri) as uri:
        for places in (1, options.block):
            for clients in options.clients:
                progress(f"{clients} clients, {places} places per reservation ...")
                results.append(await measure(uri, options, clients, places))
    return render(options, results, load_at_start)


def parse(argv: Sequence[str] | None) -> tuple[Options, Path | None]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.counter", description="Reservations per second on the feed's counter document."
    )
    parser.add_argument("--uri", help="a MongoDB to measure instead of the embedded store")
    parser.add_argument("--clients", default="1,4,16", help="concurrent clients per run (default 1,4,16)")
    parser.add_argument(
        "--block", type=int, default=100, help="places per reservation of a batch (default 100)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="counted seconds per run (default 10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds per run (default 1)")
    parser.add_argument("--write-concern", help="1, 2, ... or majority (with j); default the driver's")
    parser.add_argument("--write", type=Path, help="append the section to this file")
    args = parser.parse_args(argv)
    clients = [int(count) for count in args.clients.split(",")]
    return Options(args.uri, clients, args.block, args.seconds, args.warmup, args.write_concern), args.write


def main(argv: Sequence[str] | None = None) -> None:
    options, write = parse(argv)
    publish(asyncio.run(run(options)), write)


if __name__ == "__main__":
    main()
