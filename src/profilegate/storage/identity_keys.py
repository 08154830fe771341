"""The ``identity_keys`` collection: ``_id`` is a normalised identity; the document names a profile.

This is how identities stay unique across profiles and resolve in one ``_id`` read, without a
unique or multikey secondary index (which the embedded store cannot afford, DESIGN sec. 2).

A key document also carries the checkout payload of the profile it names, under ``checkout``
(written by ``ProfileRepository.carry_checkout``). Every change of hands here drops it in the same
single-document update, so a key never answers with the payload of a profile it no longer names.
"""

from datetime import datetime

from pymongo.errors import DuplicateKeyError

from profilegate.domain.profiles import Profile
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.profiles import checkout_payload

CLAIM_ATTEMPTS = 5


class IdentityKeyRepository:
    def __init__(self, collection: PartitionedCollection) -> None:
        self._keys = collection

    async def owner(self, key: str) -> str | None:
        found = await self._keys.for_id(key).find_one({"_id": key}, {"profileId": 1})
        return None if found is None else str(found["profileId"])

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
