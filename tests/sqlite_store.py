"""The embedded store on its SQLite engine (the one ``serve`` runs), for the tests of its limits.

The session's store runs the memory engine, which has none of SQLite's limits on one command
(docs/limits.md, *The store's limits on one command*); these tests need the real one.
"""

from collections.abc import Iterator
from pathlib import Path

from profilegate.embedded import EmbeddedStore
from tests.conftest import SLOW_STORE_OPTIONS


def sqlite_store(data_dir: Path) -> Iterator[str]:
    with EmbeddedStore(data_dir=data_dir, engine="sqlite") as store:
        assert store.uri is not None
        yield store.uri + SLOW_STORE_OPTIONS
