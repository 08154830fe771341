"""The event log acknowledges an event only once its write is: duplicates count as logged,
a write concern error never does."""

from datetime import UTC, datetime

import pytest
from pymongo.errors import BulkWriteError, PyMongoError
from pymongo.write_concern import WriteConcern

from profilegate.domain.events import EventRules, TrackedEvent, parse_event
from profilegate.storage.bulk_errors import only_duplicates
from profilegate.storage.documents import Database, Document
from profilegate.storage.events import event_log
from profilegate.storage.layout import Layout
from tests.conftest import TEST_LAYOUT
from tests.service.raw_events import email_ref, event

NOW = datetime.now(UTC)  # the store's TTL monitor removes events received a day before now
# The shape of a write concern error in an insert's reply, as a replica set sends it when
# w: majority is not reached within wtimeout:
# https://www.mongodb.com/docs/manual/reference/command/insert/#output
REPLICATION_TIMED_OUT = {
    "code": 64,
    "codeName": "WriteConcernTimeout",
    "errmsg": "waiting for replication timed out",
    "errInfo": {"wtimeout": True, "writeConcern": {"w": "majority", "j": True, "wtimeout": 100}},
}


def page_view(event_id: str) -> TrackedEvent:
    raw = event(event_id, "page_view", NOW, email_ref("ann@example.com"), url="https://shop.example/")
    return parse_event(raw, EventRules(), NOW)


async def duplicate_insert_reply(database: Database) -> Document:
    """The details of a real bulk insert that failed on an id already stored."""
    collection = database["replies"]
    await collection.insert_one({"_id": "e1"})
    with pytest.raises(BulkWriteError) as failed:
        await collection.insert_many([{"_id": "e1"}, {"_id": "e2"}], ordered=False)
    return dict(failed.value.details)


async def test_an_insert_that_met_only_duplicates_counts_as_logged(database: Database) -> None:
    assert only_duplicates(BulkWriteError(await duplicate_insert_reply(database)))


async def test_a_write_concern_error_is_never_taken_for_logged(database: Database) -> None:
    reply = await duplicate_insert_reply(database)
    # The embedded store refuses a write concern it cannot meet outright (OperationFailure)
    # instead of writing and reporting writeConcernErrors, so the error is added to its reply.
    unreplicated = BulkWriteError({**reply, "writeConcernErrors": [REPLICATION_TIMED_OUT]})
    no_duplicates = BulkWriteError(
        {**reply, "writeErrors": [], "writeConcernErrors": [REPLICATION_TIMED_OUT]}
    )

    assert not only_duplicates(unreplicated)
    assert not only_duplicates(no_duplicates)


async def test_events_the_store_cannot_write_as_asked_are_not_logged(database: Database) -> None:
    log = event_log(TEST_LAYOUT, database, 86_400, WriteConcern(w=2, j=True))
    tracked = page_view("e1")

    with pytest.raises(PyMongoError, match="w > 1 requires a replicated host"):
        await log.append([(tracked, "p1")], NOW)
    assert [document async for document in log.scan()] == []


async def test_majority_with_the_journal_is_accepted_by_the_embedded_store(database: Database) -> None:
    log = event_log(TEST_LAYOUT, database, 86_400, WriteConcern(w="majority", j=True))
    tracked = page_view("e1")

    assert await log.append([(tracked, "p1")], NOW) == {}
    assert [document["_id"] async for document in log.scan()] == ["e1"]


async def test_an_append_tells_the_ids_its_collection_held_for_another_profile(database: Database) -> None:
    log = event_log(Layout(), database, 86_400, WriteConcern(w="majority", j=True))
    await log.append([(page_view("e1"), "p1"), (page_view("e2"), "p2")], NOW)

    again = [(page_view("e1"), "p1"), (page_view("e2"), "p1"), (page_view("e3"), "p1")]
    assert await log.append(again, NOW) == {"e2": "p2"}
    logged = {document["_id"]: document["profileId"] async for document in log.scan()}
    assert logged == {"e1": "p1", "e2": "p2", "e3": "p1"}
