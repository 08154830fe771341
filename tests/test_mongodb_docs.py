"""docs/mongodb.md names every collection with the shard key the code gives it (storage/sharding.py)."""

import re
from pathlib import Path

from profilegate.storage.sharding import PLACEMENTS, sharded

DOC = Path(__file__).parents[1] / "docs" / "mongodb.md"


def table_after(heading: str) -> dict[str, str]:
    """The first table after ``heading``: each collection in its first column, its second column."""
    section = DOC.read_text().split(f"\n{heading}\n", 1)[1]
    rows: dict[str, str] = {}
    for line in section.split("\n\n|", 1)[1].splitlines():
        if not line.startswith("|") and rows:
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for name in re.findall(r"`([a-z_]+)`", cells[0]):
            rows[name] = cells[1]
    return rows


def test_the_shard_key_table_matches_the_code() -> None:
    documented = table_after("## Sharding")

    assert set(documented) == set(PLACEMENTS)
    assert {name for name, key in documented.items() if key != "unsharded"} == set(sharded())
    assert all(documented[name] == f'`{{{key}: "hashed"}}`' for name, key in sharded().items())


def test_the_index_table_names_every_collection() -> None:
    assert set(table_after("## Collections and indexes")) == set(PLACEMENTS)
