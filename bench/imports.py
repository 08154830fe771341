"""``profilegate import`` against ``POST /v1/track`` on the same store, in one run; its memory.

For each layout asked for (``--layouts``, default ``embedded,mongodb``) it starts a real gateway
(``profilegate serve`` with its embedded store in a temporary directory, that layout) and:

- track: ``--events`` generated shop events (``bench.ingest``'s generator: views, carts,
  checkouts, orders, returns of ``--profiles`` customers) through ``POST /v1/track`` in
  batches of ``--batch`` from ``--senders`` clients; the store commands are the gateway's own
  ``profilegate_store_command_duration_seconds_count``, diffed around the phase (one scrape's
  own commands taken off);
- import: as many other events, of as many other customers, written to an NDJSON file and
  imported through ``import_files`` (what ``profilegate import`` runs) into a database of its
  own on the same store (so neither path pays for the other's documents), its
  client counting commands with the gateway's listener (``CommandTimer``); the change feed and
  the maintained extensions as the command wires them.

Then, once, memory on ``--rss-lines`` (1,000,000) lines of such events, streamed to a file:
the maximum RSS (``wait4``) of ``profilegate import --dry-run`` over the whole file (it reads,
parses, validates and groups every line, writing nothing), and of a real ``profilegate import``
of its first ``--rss-import-lines`` lines into a scratch database of the same store.

Prints a Markdown section; ``--write BENCHMARKS.md`` puts it in place of the file's Import
section. Targets: the import's events/s at least 10x ``POST /v1/track``'s, and at most 0.2
store commands per imported event on the MongoDB layout.

    .venv/bin/python -m bench.imports [--events 2000] [--profiles 200] [--write BENCHMARKS.md]
"""

import argparse
import asyncio
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from bench.gateway import BenchmarkError, Gateway, create_api_key, progress, running_gateway
from bench.ingest import Event, EventFactory, batches, post_track, send
from bench.machine import TargetResult, gateway_versions, load_average, machine, publish, target_lines
from profilegate.cli import import_feed
from profilegate.service.imports import ImportFormat, ImportOptions, import_files
from profilegate.service.imports.run import BATCH_EVENTS, CHUNK_ROWS
from profilegate.settings import Settings
from profilegate.storage.command_timing import CommandTimer
from profilegate.storage.layout import LayoutKind
from profilegate.storage.store import open_client, prepare

RATE_TARGET = 10.0  # the import's events/s over POST /v1/track's
COMMANDS_TARGET = 0.2  # store commands per imported event, MongoDB layout
COMMAND_COUNT = "profilegate_store_command_duration_seconds_count"
RSS_DATABASE = "profilegate_import_rss"
IMPORT_DATABASE = "profilegate_import"
WRITE_CHUNK = 10_000
CLI_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class Options:
    layouts: tuple[LayoutKind, ...]
    events: int
    profiles: int
    batch: int
    senders: int
    rss_lines: int
    rss_import_lines: int
    seed: int
    write: Path | None


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add = parser.add_argument
    add("--layouts", default="embedded,mongodb", help="comma-separated: embedded, mongodb")
    add("--events", type=int, default=2000, help="events through each path (default 2000)")
    add("--profiles", type=int, default=200, help="customers of each path (default 200)")
    add("--batch", type=int, default=100, help="events per POST /v1/track (default 100)")
    add("--senders", type=int, default=4, help="concurrent POST /v1/track clients (default 4)")
    add("--rss-lines", type=int, default=1_000_000, help="lines of the dry run's file (0: skip)")
    add("--rss-import-lines", type=int, default=5_000, help="lines really imported for RSS")
    add("--seed", type=int, default=14)
    add("--write", type=Path, default=None, help="append the section to this file")
    args = parser.parse_args(argv)
    layouts = tuple(LayoutKind(name.strip()) for name in args.layouts.split(",") if name.strip())
    return Options(
        layouts, args.events, args.profiles, args.batch, args.senders, args.rss_lines,
        args.rss_import_lines, args.seed, args.write,
    )  # fmt: skip


@dataclass
class LayoutResult:
    layout: LayoutKind
    track_rate: float = 0.0
    track_commands: float = 0.0
    import_rate: float = 0.0
    import_commands: Counter[str] = field(default_factory=Counter)
    imported: int = 0


@dataclass
class Memory:
    lines: int
    file_mib: float
    dry_run_rss_mib: float
    dry_run_seconds: float
    import_lines: int
    import_rss_mib: float
    import_seconds: float


def gateway_settings(layout: LayoutKind, metrics_token: str) -> dict[str, str]:
    return {
        "PROFILEGATE_STORAGE_LAYOUT": layout.value,
        "PROFILEGATE_METRICS_TOKEN": metrics_token,
        "PROFILEGATE_FEED_POLL_SECONDS": "60",
        "PROFILEGATE_LOG_LEVEL": "warning",
        "PROFILEGATE_ACCESS_LOG": "false",
    }


async def scrape(http: httpx.AsyncClient, token: str) -> Counter[str]:
    response = await http.get("/metrics", headers={"authorization": f"Bearer {token}"})
    counted: Counter[str] = Counter()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == COMMAND_COUNT:
                counted[sample.labels["command"]] += int(sample.value)
    return counted


def renamed(events: list[Event], prefix: str) -> list[Event]:
    """The same kind of events for other customers (``customer-`` becomes ``prefix``)."""
    return [
        Event(e.id, e.type, e.at, e.channel, e.email.replace("customer-", prefix), e.properties)
        for e in events
    ]


def write_ndjson(path: Path, events: list[Event]) -> None:
    with path.open("wb") as stream:
        for event in events:
            stream.write(orjson.dumps(event.as_json()) + b"\n")


async def track_phase(
    gateway: Gateway, events: list[Event], options: Options, token: str
) -> tuple[float, float]:
    limits = httpx.Limits(max_connections=options.senders, max_keepalive_connections=options.senders)
    async with httpx.AsyncClient(base_url=gateway.url, limits=limits, timeout=600.0) as http:
        key = await create_api_key(http, gateway.admin_key, "INGEST", "import-benchmark")
        first = await scrape(http, token)
        overhead = sum((await scrape(http, token) - first).values())
        before = await scrape(http, token)
        http.headers["authorization"] = f"Bearer {key}"
        bodies = [
            (orjson.dumps({"events": [e.as_json() for e in b]}), len(b))
            for b in batches(events, options.batch)
        ]
        phase = await send("POST /v1/track", bodies, post_track, http, options.senders)
        del http.headers["authorization"]
        after = await scrape(http, token)
    commands = sum((after - before).values()) - overhead
    return phase.rate, commands / len(events)


async def import_phase(
    store_uri: str, layout: LayoutKind, path: Path, events: int
) -> tuple[float, Counter[str], int]:
    counted: Counter[str] = Counter()
    client = open_client(store_uri, listeners=[CommandTimer(lambda name, seconds: counted.update([name]))])
    settings = Settings(mongodb_uri=store_uri, storage_layout=layout)
    try:
        # A database of its own on the same store: neither path pays for the other's documents.
        repos = await prepare(client[IMPORT_DATABASE], settings.layout, **settings.store_options)
        now = datetime.now(UTC)
        catalogue, feed = import_feed(repos, settings)
        options = ImportOptions(ImportFormat.NDJSON, settings.tracking_rules)
        counted.clear()
        began = time.perf_counter()
        summary = await import_files(
            repos, [path], options, now, observer=feed, changed=catalogue.follow(now, feed)
        )
        seconds = time.perf_counter() - began
    finally:
        await client.close()
    if summary.counts.accepted != events:
        raise BenchmarkError(f"the import accepted {summary.counts.accepted} of {events} events: {summary}")
    return events / seconds, counted, summary.counts.accepted


def measure_layout(layout: LayoutKind, options: Options, scratch: Path, memory: list[Memory]) -> LayoutResult:
    token = os.urandom(12).hex()
    result = LayoutResult(layout)
    with running_gateway(
        f"profilegate-import-{layout.value}-", 1, gateway_settings(layout, token)
    ) as gateway:
        factory = EventFactory(options.seed, options.profiles, datetime.now(UTC))
        tracked = factory.events("t", options.events)
        imported = renamed(factory.events("i", options.events), "imported-")
        path = scratch / f"import-{layout.value}.ndjson"
        write_ndjson(path, imported)
        progress(f"{layout.value}: {options.events:,} events through POST /v1/track")
        result.track_rate, result.track_commands = asyncio.run(track_phase(gateway, tracked, options, token))
        progress(f"  {result.track_rate:.1f} events/s, {result.track_commands:.2f} commands/event")
        progress(f"{layout.value}: {options.events:,} events through the import")
        result.import_rate, result.import_commands, result.imported = asyncio.run(
            import_phase(gateway.store_uri(), layout, path, options.events)
        )
        progress(f"  {result.import_rate:.1f} events/s, {per_event(result):.3f} commands/event")
        if options.rss_lines and not memory:
            memory.append(measure_memory(gateway.store_uri(), options, scratch))
    return result


def per_event(result: LayoutResult) -> float:
    return sum(result.import_commands.values()) / max(result.imported, 1)


def measure_memory(store_uri: str, options: Options, scratch: Path) -> Memory:
    path = scratch / "million.ndjson"
    progress(f"memory: writing {options.rss_lines:,} lines")
    factory = EventFactory(options.seed + 1, max(options.profiles, 1000), datetime.now(UTC))
    with path.open("wb") as stream:
        for start in range(0, options.rss_lines, WRITE_CHUNK):
            for event in factory.events(f"m{start}", min(WRITE_CHUNK, options.rss_lines - start)):
                stream.write(orjson.dumps(event.as_json()) + b"\n")
    prefix = scratch / "prefix.ndjson"
    with path.open("rb") as source, prefix.open("wb") as target:
        for _, line in zip(range(options.rss_import_lines), source, strict=False):
            target.write(line)
    progress("memory: profilegate import --dry-run over the whole file")
    dry_rss, dry_seconds = cli_rss(store_uri, [str(path), "--dry-run"], scratch)
    progress(f"  {dry_rss:.0f} MiB in {dry_seconds:.0f} s")
    progress(f"memory: profilegate import of the first {options.rss_import_lines:,} lines")
    import_rss, import_seconds = cli_rss(store_uri, [str(prefix)], scratch)
    progress(f"  {import_rss:.0f} MiB in {import_seconds:.0f} s")
    size = path.stat().st_size / 2**20
    path.unlink()
    return Memory(
        options.rss_lines, size, dry_rss, dry_seconds, options.rss_import_lines, import_rss, import_seconds
    )


def cli_rss(store_uri: str, arguments: list[str], cwd: Path) -> tuple[float, float]:
    """The maximum RSS (MiB) and the wall time of one ``profilegate import`` process."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PROFILEGATE_")}
    env |= {
        "MONGODB_URI": store_uri,
        "PROFILEGATE_DATABASE": RSS_DATABASE,
        "PROFILEGATE_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "profilegate", "import", *arguments, "--format", "ndjson"]
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise BenchmarkError(f"profilegate import failed ({process.returncode}): {errors[-800:]}")
    return usage.ru_maxrss / 1024, seconds  # ru_maxrss is in KiB on Linux


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def render(results: list[LayoutResult], memory: list[Memory], options: Options, command: str) -> str:
    lines = [
        "## Import: `profilegate import` against `POST /v1/track`",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; {gateway_versions()}; "
        f"load average at the end {load_average()}.",
        f"Command: `{command}`",
        "",
        f"{options.events:,} events of {options.profiles:,} customers through each path, on one gateway "
        "and its embedded store per layout (`POST /v1/track`: batches of "
        f"{options.batch}, {options.senders} senders; import: one NDJSON file, `import_files` as "
        "`profilegate import` runs it, "
        f"chunks of {CHUNK_ROWS:,} rows, tracked batches of up to {BATCH_EVENTS} events).",
        "",
        "| layout | POST /v1/track events/s | its commands/event | import events/s | import commands/event "
        "| import / track | >= 10x | <= 0.2 commands/event |",
        "|---|---|---|---|---|---|---|---|",
    ]
    results_met: list[TargetResult] = []
    for result in results:
        speedup = result.import_rate / result.track_rate if result.track_rate else 0.0
        commands = per_event(result)
        command_verdict = (
            verdict(commands <= COMMANDS_TARGET)
            if result.layout is LayoutKind.MONGODB
            else f"({commands:.3f})"
        )
        lines.append(
            f"| {result.layout.value} | {result.track_rate:,.1f} | {result.track_commands:.2f} | "
            f"{result.import_rate:,.1f} | {commands:.3f} | {speedup:.1f}x | "
            f"{verdict(speedup >= RATE_TARGET)} | {command_verdict} |"
        )
        operation = f"import against POST /v1/track, {result.layout.value} layout"
        results_met.append(
            TargetResult(
                f"{operation}: events/s", f"{speedup:.1f}x", f">= {RATE_TARGET:g}x", speedup >= RATE_TARGET
            )
        )
        if result.layout is LayoutKind.MONGODB:
            passed = commands <= COMMANDS_TARGET
            target = f"<= {COMMANDS_TARGET:g}"
            results_met.append(
                TargetResult(f"{operation}: commands/event", f"{commands:.3f}", target, passed)
            )
    lines += ["", *target_lines(results_met), ""]
    for result in results:
        named = ", ".join(f"{name} {count}" for name, count in sorted(result.import_commands.items()))
        lines.append(f"Import commands by name, {result.layout.value} layout: {named}.")
    lines.append("")
    for item in memory:
        lines += [
            f"Memory over {item.lines:,} NDJSON lines ({item.file_mib:,.0f} MiB, the same generator): "
            f"`profilegate import --dry-run` (reads, parses, validates and groups every line, writes "
            f"nothing) peaked at **{item.dry_run_rss_mib:,.0f} MiB** RSS in {item.dry_run_seconds:,.0f} s; "
            f"a real `profilegate import` of the first {item.import_lines:,} lines (embedded layout, "
            f"into a database of its own) peaked at **{item.import_rss_mib:,.0f} MiB** "
            f"in {item.import_seconds:,.0f} s "
            "(maximum RSS of the process, from `wait4`).",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    command = shlex.join(
        [".venv/bin/python", "-m", "bench.imports", *(sys.argv[1:] if argv is None else argv)]
    )
    results: list[LayoutResult] = []
    memory: list[Memory] = []
    try:
        with tempfile.TemporaryDirectory(prefix="profilegate-import-bench-") as scratch:
            for layout in options.layouts:
                results.append(measure_layout(layout, options, Path(scratch), memory))
    except BenchmarkError as error:
        progress(f"error: {error}")
        return 1
    except KeyboardInterrupt:
        progress("interrupted: the gateways were stopped and their data removed")
        return 130
    publish(render(results, memory, options, command), options.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
