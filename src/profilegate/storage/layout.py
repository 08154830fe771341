"""The storage layout of a database, fixed when the database is first used."""

import contextlib

from pymongo.errors import DuplicateKeyError

from profilegate.storage.documents import Database

LAYOUT_ID = "layout"


async def load_partitions(database: Database, wanted: int) -> int:
    """Return the partition count stored for this database, storing ``wanted`` on first use.

    The count decides where each document lives, so it never changes once data exists.
    """
    meta = database["meta"]
    found = await meta.find_one({"_id": LAYOUT_ID})
    if found is None:
        with contextlib.suppress(DuplicateKeyError):
            await meta.insert_one({"_id": LAYOUT_ID, "partitions": wanted})
        found = await meta.find_one({"_id": LAYOUT_ID})
        assert found is not None, "the layout document was just written"
    return int(found["partitions"])
