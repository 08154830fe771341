"""The tier evaluation of ``domain.tiers`` as an aggregation pipeline, for counts per tier.

The database computes each profile's tier from its stored daily buckets and extensions and
groups by it; no profile comes into Python. It mirrors ``evaluate_loyalty`` step by step,
and a property test holds the two to the same answers:

- each day with orders becomes a credit (its day number plus the return lock, net spend);
- the metric on day q is the sum of the credits in [q - window + 1, q];
- a tier is reached when the metric's maximum over the look-back [start, today] is at least
  its threshold in money; that maximum is on the start day or on a day where a credit enters
  or leaves the window, so only those days are evaluated;
- overrides by live extensions come first: ``NO_TIER``, then the first ``FIXED_TIER``, then
  the highest ``FLOOR`` above the tier earned.
"""

from datetime import UTC, datetime
from typing import Any

from profilegate.domain.tiers import OverrideEffect, TierPolicy, day_number
from profilegate.storage.documents import Document

MS_PER_DAY = 86_400_000
NO_TIER = -1


def tier_count_pipeline(policy: TierPolicy, now: datetime) -> list[Document]:
    return [*tier_rank_pipeline(policy, now), {"$group": {"_id": "$rank", "profiles": {"$sum": 1}}}]


def tier_rank_pipeline(policy: TierPolicy, now: datetime) -> list[Document]:
    """Each profile (not merged away) as ``{_id, rank}``: its tier's index, ``NO_TIER`` for none."""
    today = day_number(now.astimezone(UTC).date())
    start = day_number(policy.retention.lookback_start(now.astimezone(UTC).date()))
    overrides = _live_overrides(policy, now)
    return [
        {"$match": {"mergedInto": None}},
        {"$project": {"credits": _credits(policy), **overrides}},
        # the best metric once per profile, not once per tier the ranking compares it with
        {"$project": {"best": _best(policy, start, today), **dict.fromkeys(overrides, 1)}},
        {"$project": {"rank": _rank(policy, "$best")}},
    ]


def tier_counts(policy: TierPolicy, grouped: list[Document]) -> dict[str | None, int]:
    """Tier name (None: no tier) -> profiles, from the pipeline's groups of every partition."""
    counts: dict[str | None, int] = {tier.name: 0 for tier in policy.tiers}
    counts[None] = 0
    for group in grouped:
        rank = int(group["_id"])
        name = None if rank == NO_TIER else policy.tiers[rank].name
        counts[name] += int(group["profiles"])
    return counts


def _credits(policy: TierPolicy) -> Document:
    day = {"$dateFromString": {"dateString": "$$d.k", "format": "%Y-%m-%d"}}
    number = {"$toLong": {"$divide": [{"$toLong": day}, MS_PER_DAY]}}
    bucket = "$$d.v"
    net = {
        "$subtract": [
            {"$ifNull": [f"{bucket}.g", 0]},
            {"$add": [{"$ifNull": [f"{bucket}.k", 0]}, {"$ifNull": [f"{bucket}.x", 0]}]},
        ]
    }
    return {
        "$map": {
            "input": {"$objectToArray": {"$ifNull": ["$daily", {}]}},
            "as": "d",
            "in": {"c": {"$add": [number, policy.return_lock_days]}, "v": net},
        }
    }


def _live(extension: str, now: datetime) -> Document:
    """The extension is on the profile and has not expired (``ExtensionGrant.active``)."""
    grant = f"$extensions.{extension}"
    present = {"$ne": [{"$ifNull": [f"{grant}.at", None]}, None]}
    expiry = {"$ifNull": [f"{grant}.expiresAt", None]}
    return {"$and": [present, {"$or": [{"$eq": [expiry, None]}, {"$gt": [expiry, now]}]}]}


def _live_overrides(policy: TierPolicy, now: datetime) -> dict[str, Document]:
    return {f"o{index}": _live(o.extension, now) for index, o in enumerate(policy.overrides)}


def _metric_on(day: Any, window: int) -> Document:
    """Net spend credited in the window that ends on ``day``."""
    inside = {"$and": [{"$lte": ["$$j.c", day]}, {"$gt": ["$$j.c", {"$subtract": [day, window]}]}]}
    return {
        "$sum": {
            "$map": {
                "input": {"$filter": {"input": "$credits", "as": "j", "cond": inside}},
                "as": "j",
                "in": "$$j.v",
            }
        }
    }


def _best(policy: TierPolicy, start: int, today: int) -> Document:
    window = policy.window_days
    changes = {
        "$concatArrays": [
            [start],
            {"$map": {"input": "$credits", "as": "j", "in": "$$j.c"}},
            {"$map": {"input": "$credits", "as": "j", "in": {"$add": ["$$j.c", window]}}},
        ]
    }
    days = {
        "$filter": {
            "input": changes,
            "as": "q",
            "cond": {"$and": [{"$gte": ["$$q", start]}, {"$lte": ["$$q", today]}]},
        }
    }
    return {"$max": {"$map": {"input": days, "as": "q", "in": _metric_on("$$q", window)}}}


def _rank(policy: TierPolicy, best: str) -> Document:
    """The tier's rank (NO_TIER: none): the decisive override in policy order, else the tier earned
    raised to the highest live floor. Branches are flat, so any number of tiers and overrides
    keeps the expression's nesting depth the same."""
    floors = [
        {"$cond": [f"$o{index}", policy.rank(o.tier or ""), 0]}
        for index, o in enumerate(policy.overrides)
        if o.effect is OverrideEffect.FLOOR
    ]
    earned = _earned(policy, best)
    floored = {"$max": [earned, *floors]} if floors else earned
    decisive = [
        {"case": f"$o{index}", "then": NO_TIER if o.tier is None else policy.rank(o.tier)}
        for effect in (OverrideEffect.NO_TIER, OverrideEffect.FIXED_TIER)  # NO_TIER wins
        for index, o in enumerate(policy.overrides)
        if o.effect is effect
    ]
    # $switch needs at least one branch: https://www.mongodb.com/docs/manual/reference/operator/aggregation/switch/
    return {"$switch": {"branches": decisive, "default": floored}} if decisive else floored


def _earned(policy: TierPolicy, best: str) -> Document:
    """The highest tier whose threshold the best metric reached; the entry tier (0) otherwise.
    A bare 0 in ``$project`` would exclude the field, hence ``$literal``."""
    branches = [
        {"case": {"$gte": [best, policy.spend_threshold(tier)]}, "then": index}
        for index, tier in reversed(list(enumerate(policy.tiers)))
        if index > 0
    ]
    return {"$switch": {"branches": branches, "default": 0}} if branches else {"$literal": 0}
