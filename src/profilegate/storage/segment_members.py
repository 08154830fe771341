"""The ``segment_members`` collection: which profiles are in which segment, kept on write.

One document per member, ``_id`` ``"<segment key>/<profile id>"``, so the members of a segment
are one range of ``_id`` in profile id order and a page of them is one indexed range read per
collection (``/`` sorts after ``-``, the only other character of a key that is not a letter
or digit, so one segment's range never holds another's). ``until`` is the moment the rule
can next answer otherwise without a write of the profile (None: only a write changes it).
In the embedded layout the documents are partitioned by profile id, like the profiles.

Whether a segment's members are complete for its current version (the backfill after a
save finished) is kept in ``meta``, as ``segment-members:<key>``.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime

from pymongo import ASCENDING, DeleteOne, IndexModel, UpdateOne

from profilegate.storage.documents import Collection, Document
from profilegate.storage.partitions import PartitionedCollection

BUILT_PREFIX = "segment-members:"
KEY_END = "0"  # the character after "/": the end of one segment's range of _id
# The refresh asks for the members whose ``until`` has passed. Not created in the embedded
# layout, whose store filters in Python whatever the index; ``until`` is one BSON type (a date)
# or null, never an array, so the index is not multikey.
MEMBERS_BATCH = 1_000_000  # all of a segment's members in the first batch, up to 16 MiB
DUE_INDEX = IndexModel([("segment", ASCENDING), ("until", ASCENDING)], name="segment_until")


def member_id(segment: str, profile_id: str) -> str:
    return f"{segment}/{profile_id}"


def member_document(segment: str, profile_id: str, until: datetime | None) -> Document:
    return {
        "_id": member_id(segment, profile_id),
        "segment": segment,
        "profileId": profile_id,
        "until": until,
    }


class SegmentMemberRepository:
    def __init__(self, collection: PartitionedCollection, meta: Collection) -> None:
        self._members = collection
        self._meta = meta

    async def hold_indexes(self) -> None:
        for partition in self._members.all():
            await partition.create_indexes([DUE_INDEX])

    async def record(
        self, profile_id: str, inside: Mapping[str, datetime | None], outside: Sequence[str]
    ) -> None:
        """Record the profile in the ``inside`` segments (with their ``until``), out of the
        ``outside`` ones: one unordered bulk write."""
        writes: list[UpdateOne | DeleteOne] = []
        for key, until in inside.items():
            document = member_document(key, profile_id, until)
            writes.append(UpdateOne({"_id": document.pop("_id")}, {"$set": document}, upsert=True))
        writes.extend(DeleteOne({"_id": member_id(key, profile_id)}) for key in outside)
        if writes:
            await self._members.for_id(profile_id).bulk_write(writes, ordered=False)

    async def page(self, segment: str, first: int, after: str | None) -> list[tuple[str, datetime | None]]:
        """Up to ``first`` members' profile ids (and ``until``) in id order after ``after``."""
        start = {"$gt": member_id(segment, after)} if after is not None else {"$gte": member_id(segment, "")}
        query = {"_id": {**start, "$lt": f"{segment}{KEY_END}"}}
        found: list[Document] = []
        for partition in self._members.all():
            found.extend([d async for d in partition.find(query, {"until": 1}).sort("_id", 1).limit(first)])
        found.sort(key=lambda document: str(document["_id"]))
        prefix = len(segment) + 1
        return [(str(document["_id"])[prefix:], document.get("until")) for document in found[:first]]

    async def recorded(self, segment: str) -> dict[str, datetime | None]:
        """Every recorded member's profile id with its ``until``: one read per collection."""
        query = {"_id": {"$gte": member_id(segment, ""), "$lt": f"{segment}{KEY_END}"}}
        prefix = len(segment) + 1
        found: dict[str, datetime | None] = {}
        for partition in self._members.all():
            async for document in partition.find(query, {"until": 1}, batch_size=MEMBERS_BATCH):
                found[str(document["_id"])[prefix:]] = document.get("until")
        return found

    async def profile_ids(self, segment: str) -> list[str]:
        """Every recorded member's profile id: one read per collection (the driver fetches
        further batches only past 16 MiB, some 400,000 members)."""
        query = {"_id": {"$gte": member_id(segment, ""), "$lt": f"{segment}{KEY_END}"}}
        return [
            str(d["profileId"])
            for p in self._members.all()
            async for d in p.find(query, {"profileId": 1}, batch_size=MEMBERS_BATCH)
        ]

    async def due(self, segment: str, now: datetime) -> list[str]:
        """Profile ids of members whose ``until`` has passed."""
        query = {"segment": segment, "until": {"$lte": now}}
        return [
            str(d["profileId"]) for p in self._members.all() async for d in p.find(query, {"profileId": 1})
        ]

    async def clear(self, segment: str) -> None:
        """Forget every member of the segment (it changed or was deleted)."""
        query = {"_id": {"$gte": member_id(segment, ""), "$lt": f"{segment}{KEY_END}"}}
        for partition in self._members.all():
            await partition.delete_many(query)

    async def built(self, segment: str) -> int | None:
        """The segment version whose members are complete, if any."""
        found = await self._meta.find_one({"_id": BUILT_PREFIX + segment})
        return None if found is None else int(found["version"])

    async def mark_built(self, segment: str, version: int | None) -> None:
        """Say the members of ``version`` are complete (None: they are not, for any version)."""
        if version is None:
            await self._meta.delete_one({"_id": BUILT_PREFIX + segment})
        else:
            await self._meta.update_one(
                {"_id": BUILT_PREFIX + segment}, {"$set": {"version": version}}, upsert=True
            )
