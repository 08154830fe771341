"""The ``identity_keys`` collection: ``_id`` is a normalised identity; the document names a profile.

This is how identities stay unique across profiles and resolve in one ``_id`` read, without a
unique or multikey secondary index (which the embedded store cannot afford, DESIGN sec. 2).

A key document also carries the checkout payload of the profile it names, under ``checkout``
(written by ``ProfileRepository.carry_checkout``). Every change of hands here drops it in the same
single-document update, so a key never answers with the payload of a profile it no longer names.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from pymongo.errors import BulkWriteError, DuplicateKeyError

from profilegate.domain.profiles import Profile
from profilegate.storage.bulk_errors import only_duplicates
from profilegate.storage.command_limits import MAX_IN_VALUES, chunked
from profilegate.storage.documents import Document
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.profiles import checkout_payload, profile_from_document

CLAIM_ATTEMPTS = 5


class KeyLookup(NamedTuple):
    """``owners``: key -> profile id; ``profiles``: those read with them, by id; ``buried``: the
    tombstones asked for that exist, or None when they were not read."""

    owners: dict[str, str]
    profiles: dict[str, Profile]
    buried: set[str] | None


class IdentityKeyRepository:
    """``profiles`` and ``tombstones``: where the profiles the keys name and the tombstones live;
    when all three are one collection each (the mongodb layout), ``lookup`` reads them in one
    command."""

    def __init__(
        self,
        collection: PartitionedCollection,
        profiles: PartitionedCollection | None = None,
        tombstones: PartitionedCollection | None = None,
    ) -> None:
        self._keys = collection
        self._profiles = profiles
        self._tombstones = tombstones

    async def owner(self, key: str) -> str | None:
        found = await self._keys.for_id(key).find_one({"_id": key}, {"profileId": 1})
        return None if found is None else str(found["profileId"])

    async def owners(self, keys: Iterable[str]) -> dict[str, str]:
        """The profile each of ``keys`` names, for those that name one: one read per partition."""
        found: dict[str, str] = {}
        for collection, wanted in self._keys.by_partition(keys).items():
            for chunk in chunked(wanted):
                async for document in collection.find({"_id": {"$in": chunk}}, {"profileId": 1}):
                    found[document["_id"]] = str(document["profileId"])
        return found

    async def lookup(self, keys: Iterable[str], tombstones: Iterable[str] = ()) -> "KeyLookup":
        """The profile each key names (as ``owners``), and where one round trip can bring them,
        those profiles and which of ``tombstones`` are buried.

        In the mongodb layout that is one aggregate: a ``$lookup`` by ``_id`` from the keys into
        the profiles (allowed into a sharded collection since MongoDB 5.1,
        https://www.mongodb.com/docs/manual/reference/operator/aggregation/lookup/#sharded-collections)
        and a ``$unionWith`` of the tombstones asked for
        (https://www.mongodb.com/docs/manual/reference/operator/aggregation/unionWith/).
        Partitioned collections cannot be joined: there the caller reads the rest itself.
        """
        wanted, asked = list(dict.fromkeys(keys)), list(dict.fromkeys(tombstones))
        if not self._joinable or not (wanted or asked):
            return KeyLookup(await self.owners(wanted), {}, None)
        found, buried = KeyLookup({}, {}, set()), set[str]()
        # Each aggregate's two ``$in`` lists together within one command's limit.
        for first in range(0, max(len(wanted), len(asked)), MAX_IN_VALUES // 2):
            window = slice(first, first + MAX_IN_VALUES // 2)
            await self._look_up(wanted[window], asked[window], found, buried)
        return found._replace(buried=buried)

    async def _look_up(
        self, keys: list[str], tombstones: list[str], found: "KeyLookup", buried: set[str]
    ) -> None:
        lookup = await self._keys.for_id("").aggregate(self._lookup_pipeline(keys, tombstones))
        async for document in lookup:
            if document.get("tombstone"):
                buried.add(document["_id"])
                continue
            found.owners[document["_id"]] = str(document["profileId"])
            for joined in document["profile"]:
                found.profiles[joined["_id"]] = profile_from_document(joined)

    @property
    def _joinable(self) -> bool:
        single = (self._keys, self._profiles, self._tombstones)
        return all(collection is not None and collection.count == 1 for collection in single)

    def _lookup_pipeline(self, keys: list[str], tombstones: list[str]) -> list[Document]:
        assert self._profiles is not None, "only joinable collections"
        assert self._tombstones is not None, "only joinable collections"
        join = {
            "from": self._profiles.name,
            "localField": "profileId",
            "foreignField": "_id",
            "as": "profile",
        }
        buried = [
            {"$match": {"_id": {"$in": tombstones}}},
            {"$project": {"_id": 1, "tombstone": {"$literal": True}}},
        ]
        return [
            {"$match": {"_id": {"$in": keys}}},
            {"$lookup": join},
            {"$unionWith": {"coll": self._tombstones.name, "pipeline": buried}},
        ]

    async def claim_new(self, claims: Sequence[tuple[str, Profile]], now: datetime) -> set[str]:
        """Make each ``(key, profile)`` key name its new profile, carrying its checkout payload,
        where no profile holds it yet, in one insert per partition; return the keys claimed. A
        key already there stays as it is (the ``_id`` index refuses the second claim, so a race
        has one winner)."""
        claimed: set[str] = set()
        wanted = dict(claims)
        for collection, keys in self._keys.by_partition(wanted).items():
            documents = [
                {
                    "_id": key,
                    "profileId": wanted[key].id,
                    "at": now,
                    "checkout": checkout_payload(wanted[key]),
                }
                for key in keys
            ]
            refused: set[str] = set()
            try:
                await collection.insert_many(documents, ordered=False)
            except BulkWriteError as error:
                if not only_duplicates(error):
                    raise
                refused = {documents[failed["index"]]["_id"] for failed in error.details["writeErrors"]}
            claimed.update(key for key in keys if key not in refused)
        return claimed

    async def claim(
        self, key: str, profile_id: str, now: datetime, *, carrying: Profile | None = None
    ) -> str:
        """Make ``key`` name ``profile_id`` unless it names another profile; return the owner.

        ``carrying``: the new profile the key is claimed for, whose checkout payload the key is
        created with (so creating a profile writes no key twice)."""
        collection = self._keys.for_id(key)
        claimed = {"_id": key, "profileId": profile_id, "at": now}
        if carrying is not None:
            claimed["checkout"] = checkout_payload(carrying)
        for _ in range(CLAIM_ATTEMPTS):
            try:
                await collection.insert_one(claimed)
            except DuplicateKeyError:
                owner = await self.owner(key)
                if owner is not None:
                    return owner
                continue  # released between our insert and our read: try again
            return profile_id
        raise RuntimeError(f"identity key {key} keeps changing hands")

    async def take_over(self, key: str, orphaned_by: str, profile_id: str, now: datetime) -> bool:
        """Re-point a key whose profile never came to exist (its writer died half-way)."""
        result = await self._keys.for_id(key).update_one(
            {"_id": key, "profileId": orphaned_by, "at": {"$lt": now}},
            {"$set": {"profileId": profile_id, "at": now}, "$unset": {"checkout": ""}},
        )
        return result.modified_count == 1

    async def claimed_at_time(self, at: datetime) -> dict[str, str]:
        """The keys claimed at exactly ``at`` (a writer's time) and the profile each names. A scan
        of every partition: for the rare repair after that writer was killed."""
        found: dict[str, str] = {}
        for collection in self._keys.all():
            async for document in collection.find({"at": at}, {"profileId": 1}):
                found[document["_id"]] = str(document["profileId"])
        return found

    async def release_claim(self, key: str, profile_id: str, at: datetime) -> bool:
        """Give a key up if it still names ``profile_id`` from its claim at ``at``; whether it did."""
        result = await self._keys.for_id(key).delete_one({"_id": key, "profileId": profile_id, "at": at})
        return result.deleted_count == 1

    async def claimed_at(self, key: str) -> datetime | None:
        found = await self._keys.for_id(key).find_one({"_id": key}, {"at": 1})
        return None if found is None else found["at"]

    async def repoint(self, key: str, from_profile: str, to_profile: str) -> None:
        """Make a key that names ``from_profile`` name ``to_profile`` (after a merge), dropping the
        checkout payload ``from_profile`` left on it."""
        await self._keys.for_id(key).update_one(
            {"_id": key, "profileId": from_profile},
            {"$set": {"profileId": to_profile}, "$unset": {"checkout": ""}},
        )

    async def release_held_by(self, key: str, profile_ids: list[str]) -> bool:
        """Give a key up if one of ``profile_ids`` holds it; whether it was."""
        result = await self._keys.for_id(key).delete_one({"_id": key, "profileId": {"$in": profile_ids}})
        return result.deleted_count == 1

    async def release(self, key: str, profile_id: str) -> None:
        """Give a key up, only if ``profile_id`` still holds it."""
        await self._keys.for_id(key).delete_one({"_id": key, "profileId": profile_id})
