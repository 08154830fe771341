"""The storage layout of a database, fixed when the database is first used."""

import contextlib
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from profilegate.storage.documents import Database

LAYOUT_ID = "layout"


@dataclass(frozen=True)
class Layout:
    """``partitions``: collections that profiles and identity keys are spread over.
    ``event_segment_size``: documents per event-log segment; None keeps one collection."""

    partitions: int = 1
    event_segment_size: int | None = None


async def load_layout(database: Database, wanted: Layout) -> Layout:
    """Return the layout stored for this database, storing ``wanted`` on first use.

    The layout decides where each document lives, so it never changes once data exists.
    """
    meta = database["meta"]
    found = await meta.find_one({"_id": LAYOUT_ID})
    if found is None:
        with contextlib.suppress(DuplicateKeyError):
            await meta.insert_one(
                {
                    "_id": LAYOUT_ID,
                    "partitions": wanted.partitions,
                    "eventSegmentSize": wanted.event_segment_size,
                }
            )
        found = await meta.find_one({"_id": LAYOUT_ID})
        assert found is not None, "the layout document was just written"
    return Layout(partitions=int(found["partitions"]), event_segment_size=found.get("eventSegmentSize"))
