"""Counts per tier from the database agree with the pure evaluation of each profile."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from profilegate.domain.aggregates import Aggregates, DayBucket
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.profiles import Profile
from profilegate.domain.tiers import TierPolicy, check_draft, evaluate_loyalty, spend_by_day
from profilegate.storage.store import Repositories
from tests.conftest import fresh_repositories

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
EXTENSIONS = ("no-reward", "employee", "status-match-gold", "vip")
TIER_NAMES = ("MEMBER", "SILVER", "GOLD", "PLATINUM")


def make_policy(raw: dict[str, Any]) -> TierPolicy:
    draft = check_draft(raw, "EUR", EXTENSIONS)
    return TierPolicy(**draft.model_dump(), version=1, currency="EUR", published_at=NOW, published_by="t")


@st.composite
def policies(draw: st.DrawFn) -> TierPolicy:
    count = draw(st.integers(2, 4))
    steps = draw(st.lists(st.integers(1, 40_000), min_size=count - 1, max_size=count - 1))
    thresholds = [0]
    for step in steps:
        thresholds.append(thresholds[-1] + step)
    names = TIER_NAMES[:count]
    tiers = [{"name": n, "threshold": f"{t / 100:.2f}"} for n, t in zip(names, thresholds, strict=True)]
    retention = draw(
        st.sampled_from([{"kind": "NONE"}, {"kind": "ROLLING", "days": 30}, {"kind": "END_OF_NEXT_YEAR"}])
    )
    overrides = []
    for extension, effect in draw(
        st.lists(
            st.tuples(st.sampled_from(EXTENSIONS), st.sampled_from(["NO_TIER", "FIXED_TIER", "FLOOR"])),
            max_size=3,
            unique_by=lambda pair: pair[0],
        )
    ):
        tier = None if effect == "NO_TIER" else draw(st.sampled_from(names))
        overrides.append({"extension": extension, "effect": effect, "tier": tier})
    return make_policy(
        {
            "metric": "NET_SPEND",
            "windowDays": draw(st.sampled_from([1, 7, 30, 365])),
            "returnLockDays": draw(st.sampled_from([0, 14, 30])),
            "retention": retention,
            "tiers": tiers,
            "overrides": overrides,
        }
    )


def edge_days(policy: TierPolicy) -> list[int]:
    """Days back at which an order enters or leaves what the policy counts."""
    lock, window = policy.return_lock_days, policy.window_days
    lookback = (NOW.date() - policy.retention.lookback_start(NOW.date())).days
    edges = {0, 1, lock - 1, lock, lock + window - 1, lock + window, lookback + lock + window - 1}
    return sorted(day for day in edges | {lookback + lock + window} if day >= 0)


def edge_amounts(policy: TierPolicy) -> list[int]:
    return [
        t + d
        for tier in policy.tiers
        for t in [policy.spend_threshold(tier)]
        for d in (-1, 0, 1)
        if t + d >= 0
    ]


@st.composite
def profiles(draw: st.DrawFn, number: int, policy: TierPolicy) -> Profile:
    days = draw(st.lists(st.sampled_from(edge_days(policy)) | st.integers(0, 1200), max_size=6, unique=True))
    daily = {}
    for back in days:
        gross = draw(st.sampled_from(edge_amounts(policy)) | st.integers(0, 60_000))
        daily[(NOW.date() - timedelta(days=back)).isoformat()] = DayBucket(
            counts={"order_completed": 1},
            orders=1,
            gross=gross,
            order_returns=draw(st.sampled_from([0, 0, 1, gross // 3])),
            cancelled=draw(st.sampled_from([0, 0, gross // 2])),
        )
    extensions = {}
    for name in draw(st.lists(st.sampled_from(EXTENSIONS), max_size=3, unique=True)):
        expires = draw(st.sampled_from([None, NOW - timedelta(seconds=1), NOW, NOW + timedelta(days=2)]))
        extensions[name] = ExtensionGrant(
            name=name, at=NOW - timedelta(days=5), by="t", reason="r", expires_at=expires
        )
    return Profile(
        id=f"p{number}",
        extensions=extensions,
        aggregates=Aggregates(daily=daily),
        merged_into=draw(st.sampled_from([None, None, None, "p0"])),
        created_at=NOW,
        updated_at=NOW,
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[TierPolicy, list[Profile]]:
    policy = draw(policies())
    return policy, [draw(profiles(number, policy)) for number in range(draw(st.integers(0, 8)))]


def expected(policy: TierPolicy, population: list[Profile]) -> dict[str | None, int]:
    counted = Counter(
        loyalty.tier.name if loyalty.tier else None
        for p in population
        if p.merged_into is None
        for loyalty in [evaluate_loyalty(policy, spend_by_day(p.aggregates.daily), p.extensions, NOW)]
    )
    return {tier.name: counted[tier.name] for tier in policy.tiers} | {None: counted[None]}


async def insert(repos: Repositories, population: list[Profile]) -> None:
    for profile in population:
        await repos.profiles.insert(profile)


@settings(max_examples=60, deadline=None)
@given(cases())
async def test_the_database_counts_what_the_predicate_says(
    store_uri: str, case: tuple[TierPolicy, list[Profile]]
) -> None:
    policy, population = case
    async with fresh_repositories(store_uri) as repos:
        await insert(repos, population)
        assert await repos.profiles.tier_counts(policy, NOW) == expected(policy, population)


FIXTURE_LIKE = make_policy(
    {
        "metric": "NET_SPEND",
        "windowDays": 365,
        "returnLockDays": 30,
        "retention": {"kind": "END_OF_NEXT_YEAR"},
        "tiers": [
            {"name": "MEMBER", "threshold": "0"},
            {"name": "SILVER", "threshold": "250.00"},
            {"name": "GOLD", "threshold": "1000.00"},
        ],
        "overrides": [
            {"extension": "no-reward", "effect": "NO_TIER"},
            {"extension": "employee", "effect": "FIXED_TIER", "tier": "GOLD"},
        ],
    }
)


def customer(number: int, spend: dict[int, int], *extensions: str, merged: bool = False) -> Profile:
    daily = {
        (NOW.date() - timedelta(days=back)).isoformat(): DayBucket(orders=1, gross=gross)
        for back, gross in spend.items()
    }
    grants = {e: ExtensionGrant(name=e, at=NOW, by="t", reason="r") for e in extensions}
    return Profile(
        id=f"c{number}",
        extensions=grants,
        aggregates=Aggregates(daily=daily),
        merged_into="c0" if merged else None,
        created_at=NOW,
        updated_at=NOW,
    )


async def test_counts_cover_every_tier_and_the_excluded(repos: Repositories) -> None:
    await insert(
        repos,
        [
            customer(0, {}),
            customer(1, {40: 100_000}),  # GOLD
            customer(2, {40: 99_999}),  # SILVER
            customer(3, {10: 100_000}),  # inside the return window: MEMBER
            customer(4, {500: 100_000}),  # reached GOLD last year: kept to the end of this one
            customer(5, {40: 100_000}, "no-reward"),  # excluded
            customer(6, {}, "employee"),  # fixed GOLD
            customer(7, {40: 100_000}, merged=True),  # merged away: not counted
        ],
    )
    counts = await repos.profiles.tier_counts(FIXTURE_LIKE, NOW)
    assert counts == {"MEMBER": 2, "SILVER": 1, "GOLD": 3, None: 1}
