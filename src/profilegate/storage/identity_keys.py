"""The ``identity_keys`` collection: ``_id`` is a normalised identity; the document names a profile.

This is how identities stay unique across profiles and resolve in one ``_id`` read, without a
unique or multikey secondary index (which the embedded store cannot afford, DESIGN sec. 2).
"""

from collections.abc import Iterable, Sequence
from datetime import datetime

from pymongo.errors import BulkWriteError, DuplicateKeyError

from profilegate.domain.profiles import Profile
from profilegate.storage.documents import Document
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.profiles import profile_from_document

CLAIM_ATTEMPTS = 5
DUPLICATE_KEY = 11000


class IdentityKeyRepository:
    """``profiles``: where the profiles the keys name live; when the keys and the profiles are one
    collection each (the mongodb layout), ``owners_with_profiles`` reads both in one command."""

    def __init__(
        self, collection: PartitionedCollection, profiles: PartitionedCollection | None = None
    ) -> None:
        self._keys = collection
        self._profiles = profiles

    async def owner(self, key: str) -> str | None:
        found = await self._keys.for_id(key).find_one({"_id": key}, {"profileId": 1})
        return None if found is None else str(found["profileId"])

    async def owners(self, keys: Iterable[str]) -> dict[str, str]:
        """The profile each of ``keys`` names, for those that name one: one read per partition."""
        found: dict[str, str] = {}
        for collection, wanted in self._keys.by_partition(keys).items():
            async for document in collection.find({"_id": {"$in": wanted}}, {"profileId": 1}):
                found[document["_id"]] = str(document["profileId"])
        return found

    async def owners_with_profiles(self, keys: Iterable[str]) -> tuple[dict[str, str], dict[str, Profile]]:
        """The profile each key names (as ``owners``), and those profiles where one round trip can
        bring them: a ``$lookup`` by ``_id`` from the keys into the profiles, which MongoDB
        allows into a sharded collection since 5.1
        (https://www.mongodb.com/docs/manual/reference/operator/aggregation/lookup/#sharded-collections).
        Partitioned collections cannot be joined: there the profiles are left to the caller."""
        wanted = list(dict.fromkeys(keys))
        if self._profiles is None or self._profiles.count != 1 or self._keys.count != 1 or not wanted:
            return await self.owners(wanted), {}
        pipeline: list[Document] = [
            {"$match": {"_id": {"$in": wanted}}},
            {
                "$lookup": {
                    "from": self._profiles.name,
                    "localField": "profileId",
                    "foreignField": "_id",
                    "as": "profile",
                }
            },
        ]
        owners: dict[str, str] = {}
        profiles: dict[str, Profile] = {}
        async for document in await self._keys.for_id(wanted[0]).aggregate(pipeline):
            owners[document["_id"]] = str(document["profileId"])
            for joined in document["profile"]:
                profiles[joined["_id"]] = profile_from_document(joined)
        return owners, profiles

    async def claim_new(self, claims: Sequence[tuple[str, str]], now: datetime) -> set[str]:
        """Make each ``(key, profile_id)`` key name its profile where no profile holds it yet, in
        one insert per partition; return the keys claimed. A key already there stays as it is
        (the ``_id`` index refuses the second claim, so a race has one winner)."""
        claimed: set[str] = set()
        wanted = dict(claims)
        for collection, keys in self._keys.by_partition(wanted).items():
            documents = [{"_id": key, "profileId": wanted[key], "at": now} for key in keys]
            refused: set[str] = set()
            try:
                await collection.insert_many(documents, ordered=False)
            except BulkWriteError as error:
                if not only_duplicate_keys(error):
                    raise
                refused = {documents[failed["index"]]["_id"] for failed in error.details["writeErrors"]}
            claimed.update(key for key in keys if key not in refused)
        return claimed

    async def claim(self, key: str, profile_id: str, now: datetime) -> str:
        """Make ``key`` name ``profile_id`` unless it names another profile; return the owner."""
        collection = self._keys.for_id(key)
        for _ in range(CLAIM_ATTEMPTS):
            try:
                await collection.insert_one({"_id": key, "profileId": profile_id, "at": now})
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
            {"$set": {"profileId": profile_id, "at": now}},
        )
        return result.modified_count == 1

    async def claimed_at(self, key: str) -> datetime | None:
        found = await self._keys.for_id(key).find_one({"_id": key}, {"at": 1})
        return None if found is None else found["at"]

    async def repoint(self, key: str, from_profile: str, to_profile: str) -> None:
        """Make a key that names ``from_profile`` name ``to_profile`` (after a merge)."""
        await self._keys.for_id(key).update_one(
            {"_id": key, "profileId": from_profile}, {"$set": {"profileId": to_profile}}
        )

    async def release_held_by(self, key: str, profile_ids: list[str]) -> bool:
        """Give a key up if one of ``profile_ids`` holds it; whether it was."""
        result = await self._keys.for_id(key).delete_one({"_id": key, "profileId": {"$in": profile_ids}})
        return result.deleted_count == 1

    async def release(self, key: str, profile_id: str) -> None:
        """Give a key up, only if ``profile_id`` still holds it."""
        await self._keys.for_id(key).delete_one({"_id": key, "profileId": profile_id})


def only_duplicate_keys(error: BulkWriteError) -> bool:
    """Whether a bulk insert failed only on ``_id``s that exist, and no write concern failed
    (https://www.mongodb.com/docs/manual/reference/command/insert/#output)."""
    if error.details.get("writeConcernErrors"):
        return False
    return all(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", []))
