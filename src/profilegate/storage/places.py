"""Places handed out by a counter document in ``meta``: the order of the append-only logs
(the event log, the change feed, the audit log). One ``$inc`` hands out a block, so the
places of one write are contiguous."""

from pymongo import ReturnDocument

from profilegate.storage.documents import Collection


async def reserve(meta: Collection, counter: str, count: int) -> int:
    """Hand out ``count`` more places of ``counter``; the count handed out so far, these included."""
    found = await meta.find_one_and_update(
        {"_id": counter}, {"$inc": {"next": count}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert found is not None, "an upsert returns the document"
    return int(found["next"])


async def handed_out(meta: Collection, counter: str) -> int:
    """How many places of ``counter`` were handed out (0 before the first)."""
    found = await meta.find_one({"_id": counter})
    return 0 if found is None else int(found["next"])
