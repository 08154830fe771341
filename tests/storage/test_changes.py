"""The changes collection: places in order, segments rolled over and read across, pruning."""

from datetime import UTC, datetime, timedelta

import pytest
from pymongo import monitoring

from profilegate.domain.changes import ChangeKind, NewChange
from profilegate.storage.changes import change_log
from profilegate.storage.documents import Database
from profilegate.storage.layout import Layout
from profilegate.storage.store import open_client

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def entry(n: int, at: datetime = NOW) -> NewChange:
    return NewChange(
        at=at, kind=ChangeKind.EVENT_TRACKED, profile_id=f"p{n % 3}", payload={"n": n}, shareable=n % 2 == 0
    )


async def test_places_are_contiguous_in_order_across_writes_and_segments(database: Database) -> None:
    log = change_log(Layout.embedded(1, 4), database, 86_400)
    first = await log.append([entry(n) for n in range(3)])
    second = await log.append([entry(n) for n in range(3, 10)])
    assert [c.seq for c in first + second] == list(range(1, 11))
    assert await log.head() == 10
    read = await log.read(0, limit=100)
    assert [c.payload["n"] for c in read] == list(range(10))
    assert read[4].shareable
    assert [c.seq for c in await log.read(5, limit=3)] == [6, 7, 8]
    assert [c.seq for c in await log.read(2, limit=100, upto=6)] == [3, 4, 5, 6]
    assert sorted(n for n in await database.list_collection_names() if n.startswith("changes_s")) == [
        "changes_s000000",
        "changes_s000001",
        "changes_s000002",
    ]


async def test_an_empty_feed_has_head_zero_and_reads_nothing(database: Database) -> None:
    log = change_log(Layout.embedded(1, 4), database, 86_400)
    assert await log.head() == 0
    assert await log.read(0, limit=10) == []
    assert await log.append([]) == []


async def test_one_collection_holds_the_feed_where_segments_are_off(database: Database) -> None:
    log = change_log(Layout(), database, 86_400)
    now = datetime.now(UTC)  # the store's TTL monitor removes changes older than a day from now
    await log.append([entry(n, now) for n in range(5)])
    assert [c.seq for c in await log.read(1, limit=10)] == [2, 3, 4, 5]
    indexes = await database["changes"].index_information()
    assert indexes["retention"]["expireAfterSeconds"] == 86_400


async def test_prune_drops_whole_segments_older_than_the_retention_and_keeps_the_current(
    database: Database,
) -> None:
    log = change_log(Layout.embedded(1, 4), database, 86_400)
    old = NOW - timedelta(days=10)
    await log.append([entry(n, old) for n in range(6)])  # places 1-6: segment 0 (1-3), 1 (4-6)
    await log.append([entry(6), entry(7)])  # places 7 (segment 1) and 8 (segment 2, the current)
    assert await log.prune(NOW - timedelta(days=7)) == 1
    names = sorted(n for n in await database.list_collection_names() if n.startswith("changes_s"))
    assert names == ["changes_s000001", "changes_s000002"]
    assert [c.seq for c in await log.read(0, limit=100)] == [4, 5, 6, 7, 8]
    assert await log.prune(NOW + timedelta(days=30)) == 1  # the current segment stays
    assert [c.seq for c in await log.read(0, limit=100)] == [8]


class SentConcerns(monitoring.CommandListener):
    """The read and write concerns of the commands sent, by command name."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object, object]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        self.sent.append((event.command_name, command.get("readConcern"), command.get("writeConcern")))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.mark.parametrize("layout", [Layout(), Layout.embedded(1, 4)])
async def test_the_feed_is_read_and_written_with_majority(
    store_uri: str, database: Database, layout: Layout
) -> None:
    listener = SentConcerns()
    client = open_client(store_uri, listeners=[listener])
    try:
        log = change_log(layout, client[database.name], 86_400)
        await log.append([entry(n, datetime.now(UTC)) for n in range(6)])
        await log.read(0, limit=10)
    finally:
        await client.close()

    majority_write = {"w": "majority"}
    counted = [sent for sent in listener.sent if sent[0] == "findAndModify"]
    inserted = [sent for sent in listener.sent if sent[0] == "insert"]
    found = [sent for sent in listener.sent if sent[0] == "find"]
    assert counted
    assert inserted
    assert found
    assert all(write == majority_write for _, _, write in counted + inserted)
    assert all(read == {"level": "majority"} for _, read, _ in found)
