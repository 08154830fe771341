"""The ``tier_policies`` collection: every published version, and a pointer to the active one.

Versions are immutable documents ``_id: "v000001"``; publishing takes the next free number
(a clash with a concurrent publisher is a duplicate ``_id``, and it takes the next). The
``_id: "active"`` document names the active version.
"""

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from profilegate.domain.tiers import Benefit, BenefitType, TierPolicy, TierPolicyDraft
from profilegate.storage.documents import Collection, Database, Document

ACTIVE = "active"
PUBLISH_ATTEMPTS = 20


class TierPolicyRepository:
    def __init__(self, database: Database) -> None:
        self._policies: Collection = database["tier_policies"]

    async def publish(self, draft: TierPolicyDraft, *, currency: str, by: str, now: datetime) -> TierPolicy:
        version = await self.latest_version()
        for _ in range(PUBLISH_ATTEMPTS):
            version += 1
            policy = TierPolicy(
                **draft.model_dump(), version=version, currency=currency, published_at=now, published_by=by
            )
            try:
                await self._policies.insert_one(policy_to_document(policy))
            except DuplicateKeyError:
                continue
            return policy
        raise RuntimeError(f"no free policy version after {PUBLISH_ATTEMPTS} attempts")

    async def latest_version(self) -> int:
        versions = [d["version"] async for d in self._policies.find({"_id": {"$ne": ACTIVE}}, {"version": 1})]
        return max(versions, default=0)

    async def latest(self) -> TierPolicy | None:
        version = await self.latest_version()
        return None if version == 0 else await self.get(version)

    async def get(self, version: int) -> TierPolicy | None:
        found = await self._policies.find_one({"_id": _version_id(version)})
        return None if found is None else policy_from_document(found)

    async def all(self) -> list[TierPolicy]:
        found = [policy_from_document(d) async for d in self._policies.find({"_id": {"$ne": ACTIVE}})]
        return sorted(found, key=lambda policy: policy.version)

    async def activate(self, version: int, *, by: str, now: datetime) -> None:
        pointer = {"version": version, "at": now, "by": by}
        await self._policies.update_one({"_id": ACTIVE}, {"$set": pointer}, upsert=True)

    async def active_version(self) -> int | None:
        pointer = await self._policies.find_one({"_id": ACTIVE})
        return None if pointer is None else int(pointer["version"])

    async def active(self) -> TierPolicy | None:
        version = await self.active_version()
        return None if version is None else await self.get(version)


def _version_id(version: int) -> str:
    return f"v{version:06d}"


def policy_to_document(policy: TierPolicy) -> Document:
    document: Document = policy.model_dump(mode="json", by_alias=True, exclude={"tiers", "published_at"})
    document["publishedAt"] = policy.published_at
    document["tiers"] = [
        {
            "name": tier.name,
            "threshold": str(tier.threshold),
            "benefits": [_benefit_document(benefit) for benefit in tier.benefits],
        }
        for tier in policy.tiers
    ]
    return {"_id": _version_id(policy.version), **document}


def _benefit_document(benefit: Benefit) -> Document:
    value: Any = str(benefit.value) if benefit.type is BenefitType.DECIMAL else benefit.value
    return {"key": benefit.key, "type": benefit.type.value, "value": value}


def policy_from_document(document: Document) -> TierPolicy:
    fields = {key: value for key, value in document.items() if key not in ("_id", "tiers")}
    tiers = [
        {
            "name": tier["name"],
            "threshold": tier["threshold"],
            "benefits": [
                Benefit.typed(b["key"], BenefitType(b["type"]), b["value"]) for b in tier["benefits"]
            ],
        }
        for tier in document["tiers"]
    ]
    return TierPolicy.model_validate({**fields, "tiers": tiers})
