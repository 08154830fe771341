"""Average document sizes per collection of the demo shop, for sizing a MongoDB deployment.

It starts the embedded store (memory engine, over the wire), lays a database out for MongoDB
(one collection per logical collection), loads the demo shop as ``profilegate seed`` does
(``fixtures/``: extension definitions, profiles, their events, the default tier policy,
segments), then reads every document back and reports, per collection, the count, the
average BSON size and the projection to one million profiles (the collection's documents
per profile times a million times the average size) for the collections that grow with
the profiles.

    .venv/bin/python -m bench.document_sizes [--write docs/sizes.md]
"""

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import bson

from bench.gateway import progress
from bench.machine import publish
from profilegate.embedded import EmbeddedStore
from profilegate.service.seed import SeedRules, seed
from profilegate.settings import Settings
from profilegate.storage.documents import Database
from profilegate.storage.layout import Layout
from profilegate.storage.store import open_client, prepare

# The collections that grow with the number of profiles; the others hold the shop's set-up.
GROWING = {
    "profiles",
    "profile_checkout",
    "identity_keys",
    "events",
    "changes",
    "tombstones",
    "merges",
    "audit",
}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    collection: str
    count: int
    bytes: int

    @property
    def average(self) -> float:
        return self.bytes / self.count if self.count else 0.0


async def measure(database: Database) -> list[Sizes]:
    found: list[Sizes] = []
    for name in sorted(await database.list_collection_names()):
        count = total = 0
        async for document in database[name].find({}):
            count += 1
            total += len(bson.encode(document))
        found.append(Sizes(name, count, total))
    return found


async def seeded_sizes(now: datetime) -> list[Sizes]:
    settings = Settings(mongodb_uri="mongodb://unused")
    with EmbeddedStore(data_dir=None, engine="memory") as store:
        assert store.uri is not None, "a started store has a URI"
        client = open_client(store.uri)
        try:
            database = client["sizes"]
            repos = await prepare(database, Layout())
            rules = SeedRules(settings.tracking_rules, settings.tier_rules, settings.segment_rules)
            progress("seeding the demo shop ...")
            await seed(repos, FIXTURES, rules, now)
            return await measure(database)
        finally:
            await client.close()


def render(sizes: list[Sizes], when: datetime) -> str:
    profiles = next((s.count for s in sizes if s.collection == "profiles"), 0) or 1
    lines = [
        f"Measured {when:%Y-%m-%d} with `.venv/bin/python -m bench.document_sizes`: the demo shop "
        f"({profiles} profiles).",
        "",
        "| collection | documents | per profile | average BSON bytes | per million profiles |",
        "|---|---:|---:|---:|---:|",
    ]
    total = 0.0
    for size in sizes:
        per_profile = size.count / profiles
        projected = per_profile * 1_000_000 * size.average / MIB if size.collection in GROWING else None
        total += projected or 0.0
        lines.append(
            f"| `{size.collection}` | {size.count:,} | {per_profile:.2f} | {size.average:,.0f} "
            f"| {'fixed' if projected is None else f'{projected:,.0f} MiB'} |"
        )
    lines.append(f"| all that grows with profiles | | | | {total:,.0f} MiB |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.document_sizes", description="Average document sizes of the demo shop."
    )
    parser.add_argument("--write", type=Path, help="append the table to this file")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    publish(render(asyncio.run(seeded_sizes(now)), now), args.write)


if __name__ == "__main__":
    main()
