"""The ``coupons`` collection (``_id`` is the code, so codes are unique without a secondary
unique index) and the ``coupon_campaigns`` catalogue (``_id`` is the campaign's name).

Coupons are partitioned like profiles in the embedded layout (issuing is a stream of new
documents); on MongoDB they are one collection, sharded on hashed ``_id`` (a redemption is
one command by code), with an index on ``campaign`` for ``couponPerformance``.

A redemption is one conditional ``findOneAndUpdate`` by code: the filter holds the rule (a
once-only code matches only while unredeemed; an order the coupon already counted never
matches again), so two tills racing for one code cannot both win, and a replayed order is
not counted twice (https://www.mongodb.com/docs/manual/reference/method/db.collection.findOneAndUpdate/).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import BulkWriteError

from profilegate.domain.coupons import RECENT_ORDERS, Campaign, Coupon, RedemptionRule
from profilegate.domain.events import Channel
from profilegate.storage.bulk_errors import only_duplicates
from profilegate.storage.documents import Collection, Document
from profilegate.storage.partitions import PartitionedCollection

CAMPAIGN_INDEX = IndexModel([("campaign", ASCENDING)], name="campaign")
_MS_PER_DAY = 86_400_000


class CampaignOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ChannelFigures:
    """Coupons issued on a channel (``issued``, ``redeemed``: of those, how many were) or
    redemptions made on a channel (``redemptions``), with the revenue of their orders."""

    channel: Channel
    issued: int = 0
    redeemed: int = 0
    redemptions: int = 0
    revenue: int = 0


@dataclass(frozen=True)
class CampaignFigures:
    """What the aggregation returns; ``days_to_redeem``: redeemed coupons by whole days from
    issue to first redemption."""

    by_issue: list[ChannelFigures]
    by_redemption: list[ChannelFigures]
    days_to_redeem: dict[int, int]


class CouponRepository:
    def __init__(self, coupons: PartitionedCollection, campaigns: Collection) -> None:
        self._coupons = coupons
        self._campaigns = campaigns

    async def hold_indexes(self) -> None:
        for collection in self._coupons.all():
            await collection.create_indexes([CAMPAIGN_INDEX])

    async def define(self, campaign: Campaign) -> CampaignOutcome:
        """Create a campaign, or change its description; its rule is fixed once coupons exist."""
        result = await self._campaigns.update_one(
            {"_id": campaign.name},
            {
                "$set": {"description": campaign.description},
                "$setOnInsert": {"rule": campaign.rule.value, "createdAt": campaign.created_at},
            },
            upsert=True,
        )
        if result.upserted_id is not None:
            return CampaignOutcome.CREATED
        return CampaignOutcome.UPDATED if result.modified_count else CampaignOutcome.UNCHANGED

    async def campaign(self, name: str) -> Campaign | None:
        found = await self._campaigns.find_one({"_id": name})
        if found is None:
            return None
        return Campaign(
            name=found["_id"],
            rule=RedemptionRule(found["rule"]),
            description=found["description"],
            created_at=found["createdAt"],
        )

    async def insert(self, coupons: Sequence[Coupon]) -> set[str]:
        """Store new coupons; the codes that were taken already (and so not stored)."""
        by_code = {coupon.code: coupon for coupon in coupons}
        clashed: set[str] = set()
        for collection, codes in self._coupons.by_partition(by_code).items():
            try:
                await collection.insert_many([_to_document(by_code[code]) for code in codes], ordered=False)
            except BulkWriteError as error:
                if not only_duplicates(error):
                    raise
                clashed |= {codes[failed["index"]] for failed in error.details["writeErrors"]}
        return clashed

    async def get(self, code: str) -> Coupon | None:
        found = await self._coupons.for_id(code).find_one({"_id": code})
        return None if found is None else _from_document(found)

    async def redeem(
        self, code: str, order_id: str, revenue: int, at: datetime, channel: Channel, *, needs_profile: bool
    ) -> Coupon | None:
        """Count the order's redemption if the coupon allows it; the coupon after, or None
        when it did not (unknown, expired, used up, anonymous where a profile is needed, or
        the order counted already: ``domain.coupons.refusal`` tells which from a fresh read)."""
        wanted: Document = {
            "_id": code,
            "orders": {"$ne": order_id},
            "issuedAt": {"$lte": at},
            "expiresAt": {"$gt": at},
            "$or": [{"rule": RedemptionRule.COUNTED.value}, {"redemptions": 0}],
        }
        if needs_profile:
            wanted["profileId"] = {"$ne": None}
        found = await self._coupons.for_id(code).find_one_and_update(
            wanted,
            {
                "$inc": {
                    "redemptions": 1,
                    "revenue": revenue,
                    f"redeemedOn.{channel.value}": 1,
                    f"revenueOn.{channel.value}": revenue,
                },
                "$min": {"firstRedeemedAt": at},
                "$push": {"orders": {"$each": [order_id], "$slice": -RECENT_ORDERS}},
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if found is None else _from_document(found)

    async def release(self, code: str, order_id: str, revenue: int, channel: Channel) -> None:
        """Take back the order's redemption (only if counted); a once-only code is free again."""
        counted: Document = {"_id": code, "orders": order_id}
        taken_back: Document = {
            "$inc": {
                "redemptions": -1,
                "revenue": -revenue,
                f"redeemedOn.{channel.value}": -1,
                f"revenueOn.{channel.value}": -revenue,
            },
            "$pull": {"orders": order_id},
        }
        once = {**counted, "rule": RedemptionRule.ONCE.value}
        collection = self._coupons.for_id(code)
        result = await collection.update_one(once, {**taken_back, "$unset": {"firstRedeemedAt": ""}})
        if result.matched_count == 0:
            await collection.update_one(counted, taken_back)

    async def figures(self, campaign: str) -> CampaignFigures:
        """One aggregation per partition over the campaign's coupons (never a scan of profiles)."""
        by_issue: dict[Channel, ChannelFigures] = {}
        by_redemption: dict[Channel, ChannelFigures] = {}
        days: dict[int, int] = {}
        for collection in self._coupons.all():
            cursor = await collection.aggregate(_figures_pipeline(campaign))
            async for row in cursor:
                _add_row(row, by_issue, by_redemption, days)
        return CampaignFigures(
            by_issue=[by_issue[channel] for channel in Channel if channel in by_issue],
            by_redemption=[by_redemption[channel] for channel in Channel if channel in by_redemption],
            days_to_redeem=dict(sorted(days.items())),
        )


def _figures_pipeline(campaign: str) -> list[Document]:
    """Per channel of issue and whole days to the first redemption: coupons, redeemed ones,
    and the redemptions and revenue on each channel of redemption."""
    days = {
        "$cond": [
            {"$gt": ["$redemptions", 0]},
            {"$floor": {"$divide": [{"$subtract": ["$firstRedeemedAt", "$issuedAt"]}, _MS_PER_DAY]}},
            None,
        ]
    }
    sums: Document = {
        "issued": {"$sum": 1},
        "redeemed": {"$sum": {"$cond": [{"$gt": ["$redemptions", 0]}, 1, 0]}},
    }
    sums["redemptions"] = {"$sum": "$redemptions"}
    sums["revenue"] = {"$sum": "$revenue"}
    for channel in Channel:
        sums[f"on_{channel.value}"] = {"$sum": {"$ifNull": [f"$redeemedOn.{channel.value}", 0]}}
        sums[f"revenue_{channel.value}"] = {"$sum": {"$ifNull": [f"$revenueOn.{channel.value}", 0]}}
    return [
        {"$match": {"campaign": campaign}},
        {
            "$project": {
                "channel": 1,
                "redemptions": 1,
                "revenue": 1,
                "redeemedOn": 1,
                "revenueOn": 1,
                "days": days,
            }
        },
        {"$group": {"_id": {"channel": "$channel", "days": "$days"}, **sums}},
    ]


def _add_row(
    row: Document,
    by_issue: dict[Channel, ChannelFigures],
    by_redemption: dict[Channel, ChannelFigures],
    days: dict[int, int],
) -> None:
    channel = Channel(row["_id"]["channel"])
    before = by_issue.get(channel, ChannelFigures(channel))
    by_issue[channel] = ChannelFigures(
        channel,
        issued=before.issued + row["issued"],
        redeemed=before.redeemed + row["redeemed"],
        redemptions=before.redemptions + row["redemptions"],
        revenue=before.revenue + row["revenue"],
    )
    if row["_id"].get("days") is not None:
        whole = int(row["_id"]["days"])
        days[whole] = days.get(whole, 0) + row["redeemed"]
    for on in Channel:
        count, revenue = row[f"on_{on.value}"], row[f"revenue_{on.value}"]
        if count:
            seen = by_redemption.get(on, ChannelFigures(on))
            by_redemption[on] = ChannelFigures(
                on, redemptions=seen.redemptions + count, revenue=seen.revenue + revenue
            )


def _to_document(coupon: Coupon) -> Document:
    return {
        "_id": coupon.code,
        "campaign": coupon.campaign,
        "rule": coupon.rule.value,
        "channel": coupon.channel.value,
        "profileId": coupon.profile_id,
        "issuedAt": coupon.issued_at,
        "expiresAt": coupon.expires_at,
        "redemptions": 0,
        "revenue": 0,
        "orders": [],
    }


def _from_document(document: Document) -> Coupon:
    return Coupon(
        code=document["_id"],
        campaign=document["campaign"],
        rule=RedemptionRule(document["rule"]),
        channel=Channel(document["channel"]),
        profile_id=document.get("profileId"),
        issued_at=document["issuedAt"],
        expires_at=document["expiresAt"],
        redemptions=document.get("redemptions", 0),
        revenue=document.get("revenue", 0),
        first_redeemed_at=document.get("firstRedeemedAt"),
        orders=tuple(document.get("orders", [])),
    )
