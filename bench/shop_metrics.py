"""``shopMetrics`` over a year at DAY granularity: its store commands at two store sizes.

Starts the embedded store as the tests do (mongoeco in a process of its own, over the wire,
memory engine) and, for each size, prepares a fresh database in the ``--layout`` asked for and
fills a year of shop days: ``--visitors`` visitors make ``--events-per-visitor`` events each
(page and product views, orders of 10.00 to 200.00, some returns) at random moments of the
year, on web, app and store. The events reach the rollups the way tracking writes them:
``day_rollups`` of each batch of 500, in event-time order, and one ``ShopDayRepository.add``
per batch (the profiles and the event log are not written: ``shopMetrics`` never reads them).
The second size is ``--factor`` times the first in visitors.

Then ``shop_metrics`` (the service behind the GraphQL field) runs ``--repeat`` times for the
year at DAY granularity, all channels; the store commands of each run are counted by name
with a pymongo command listener (the same events the gateway's
``profilegate_store_command_duration_seconds`` counts). Target: the command count does not
grow with the store (PASS when both sizes send the same commands).

    .venv/bin/python -m bench.shop_metrics [--visitors 1000] [--factor 10] [--write BENCHMARKS.md]
"""

import argparse
import asyncio
import random
import shlex
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pymongo import monitoring

from bench.machine import TargetResult, gateway_versions, load_average, machine, publish
from profilegate.domain.events import Channel, EventType, TrackedEvent
from profilegate.domain.refs import ProfileRef
from profilegate.domain.shop_days import ShopRules, day_rollups, shop_zone
from profilegate.domain.shop_metrics import Granularity, MetricsQuery
from profilegate.embedded import EmbeddedStore
from profilegate.service.shop_metrics import shop_metrics
from profilegate.storage.layout import Layout, LayoutKind
from profilegate.storage.store import Repositories, open_client, prepare

BATCH = 500
FIRST_DAY = date(2025, 1, 1)
DAYS = 365
CHANNELS = (Channel.WEB, Channel.APP, Channel.STORE)
KINDS = (EventType.PAGE_VIEW, EventType.PRODUCT_VIEW, EventType.ORDER_COMPLETED, EventType.ORDER_RETURNED)


class _Commands(monitoring.CommandListener):
    """Counts replied commands by name while ``counting`` holds a counter."""

    def __init__(self) -> None:
        self.counting: Counter[str] | None = None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if self.counting is not None:
            self.counting[event.command_name] += 1

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if self.counting is not None:
            self.counting[event.command_name] += 1


@dataclass(frozen=True)
class Measured:
    visitors: int
    events: int
    documents: int
    fill_seconds: float
    commands: dict[str, int]
    seconds: list[float]
    total_visitors: int


def events_of(visitors: int, per_visitor: int, seed: int) -> list[tuple[TrackedEvent, str]]:
    chance = random.Random(seed)
    start = datetime(FIRST_DAY.year, 1, 1, tzinfo=UTC)
    made: list[tuple[TrackedEvent, str]] = []
    for visitor in range(visitors):
        profile_id = f"p{visitor:07d}"
        for _ in range(per_visitor):
            at = start + timedelta(seconds=chance.randrange(DAYS * 86_400))
            kind = chance.choices(KINDS, weights=(50, 40, 8, 2))[0]
            event_id = uuid.UUID(int=chance.getrandbits(128)).hex
            made.append(
                (
                    TrackedEvent(
                        id=event_id,
                        type=kind,
                        at=at,
                        channel=chance.choice(CHANNELS),
                        target=ProfileRef(id=profile_id),
                        amount=chance.randrange(1_000, 20_001) if kind is not EventType.PAGE_VIEW else 0,
                        order_id=event_id if kind is EventType.ORDER_COMPLETED else None,
                    ),
                    profile_id,
                )
            )
    return sorted(made, key=lambda pair: pair[0].at)


async def fill(repos: Repositories, events: list[tuple[TrackedEvent, str]], shop: ShopRules) -> None:
    for first in range(0, len(events), BATCH):
        await repos.shop_days.add(day_rollups(events[first : first + BATCH], shop.zone))
        if first % (BATCH * 40) == 0:
            print(f"  {first:,} of {len(events):,} events rolled up", file=sys.stderr)


async def measure(uri: str, layout: Layout, visitors: int, options: argparse.Namespace) -> Measured:
    listener = _Commands()
    client = open_client(uri, listeners=[listener])
    name = f"bench_shop_{uuid.uuid4().hex[:8]}"
    shop = ShopRules(zone=shop_zone(options.time_zone))
    try:
        repos = await prepare(client[name], layout)
        events = events_of(visitors, options.events_per_visitor, options.seed)
        began = time.perf_counter()
        await fill(repos, events, shop)
        filled = time.perf_counter() - began
        query = MetricsQuery(FIRST_DAY, FIRST_DAY + timedelta(days=DAYS - 1), Granularity.DAY)
        counts: list[Counter[str]] = []
        seconds: list[float] = []
        total = 0
        for _ in range(options.repeat):
            listener.counting = Counter()
            began = time.perf_counter()
            report = await shop_metrics(repos, query)
            seconds.append(time.perf_counter() - began)
            counts.append(listener.counting)
            listener.counting = None
            total = report.total.visitors
        assert all(c == counts[0] for c in counts), counts
        documents = await client[name]["shop_days"].count_documents({})
        return Measured(visitors, len(events), documents, filled, dict(counts[0]), seconds, total)
    finally:
        await client.drop_database(name)
        await client.close()


def section(results: list[Measured], options: argparse.Namespace, command: str) -> str:
    same = results[0].commands == results[1].commands
    small, large = (sum(m.commands.values()) for m in results)
    verdict = "PASS" if same else "FAIL"
    target = TargetResult(
        "shopMetrics for a year at DAY granularity: store commands",
        f"{small} at {results[0].events:,} events, {large} at {results[1].events:,}",
        "the same at both sizes",
        same,
    )
    rows = "\n".join(
        f"| {m.visitors:,} | {m.events:,} | {m.documents:,} | {m.total_visitors:,} | "
        f"{', '.join(f'{k} {v}' for k, v in sorted(m.commands.items()))} ({sum(m.commands.values())}) | "
        f"{statistics.median(m.seconds) * 1000:.0f} | {m.fill_seconds:.0f} |"
        for m in results
    )
    return f"""## shopMetrics: a year at DAY granularity, store commands at two sizes

{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; load average {load_average()} at the end;
{gateway_versions()}.
Command: `{command}`. Layout: {options.layout}; shop time zone {options.time_zone}; embedded store,
memory engine, over the wire. Rollups filled with the tracking path's own rollup write (one bulk
write per batch of {BATCH} events); the profiles and the event log are not written.

| visitors | events | rollup documents | visitors in the year | store commands per `shopMetrics` \
| median ms ({options.repeat} runs) | fill s |
|---|---|---|---|---|---|---|
{rows}

Target: the store commands of `shopMetrics` for a year do not grow with the store: **{verdict}**
({small} at {results[0].events:,} events, {large} at {results[1].events:,}).
The time does grow: the day documents carry each day's visitor and buyer digests, which are
read and joined in the gateway (docs/metrics.md, "Limits and accuracy").

{target.line()}
"""


async def run(options: argparse.Namespace) -> str:
    layout = Layout() if options.layout == LayoutKind.MONGODB.value else Layout.embedded(16, 250)
    with EmbeddedStore(data_dir=None, engine="memory") as store:
        assert store.uri is not None
        results = []
        for visitors in (options.visitors, options.visitors * options.factor):
            print(f"{visitors:,} visitors", file=sys.stderr)
            results.append(await measure(store.uri, layout, visitors, options))
    return section(results, options, "python -m bench.shop_metrics " + shlex.join(sys.argv[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--factor", type=int, default=10, help="the second size, in times the first")
    parser.add_argument("--events-per-visitor", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--time-zone", default="Europe/Berlin")
    layouts = [kind.value for kind in LayoutKind]
    parser.add_argument("--layout", choices=layouts, default=LayoutKind.MONGODB.value)
    parser.add_argument("--write", type=Path, default=None, help="also append the section to this file")
    options = parser.parse_args()
    publish(asyncio.run(run(options)), options.write)


if __name__ == "__main__":
    main()
