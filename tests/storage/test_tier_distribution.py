"""Counts per tier from the database agree with the pure evaluation of each profile."""

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profilegate.domain.aggregates import Aggregates, DayBucket
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.profiles import Profile
from profilegate.domain.tiers import (
    MAX_OVERRIDES,
    MAX_RETURN_LOCK_DAYS,
    MAX_TIERS,
    MAX_WINDOW_DAYS,
    TierPolicy,
    check_draft,
    evaluate_loyalty,
    spend_by_day,
)
from profilegate.storage.documents import Collection, Database
from profilegate.storage.profiles import profile_to_document
from profilegate.storage.store import Repositories
from profilegate.storage.tier_distribution import NO_TIER, tier_rank_pipeline
from tests.conftest import fresh_repositories

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
EXTENSIONS = ("no-reward", "employee", "status-match-gold", "vip")
MILLI = timedelta(milliseconds=1)


def make_policy(raw: dict[str, Any]) -> TierPolicy:
    draft = check_draft(raw, "EUR", EXTENSIONS)
    return TierPolicy(**draft.model_dump(), version=1, currency="EUR", published_at=NOW, published_by="t")


# Every example of the agreement test is one aggregation over a batch of profiles; CI runs
# this many (measured: 2,000 cases in under 5 minutes on two busy cores, embedded store).
AGREEMENT_EXAMPLES = 2000
settings.register_profile(
    "tier-agreement",
    max_examples=AGREEMENT_EXAMPLES,
    deadline=None,
    # the examples share one database (making one per example costs more than the example);
    # each example deletes the profiles it inserted
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
POOL = tuple(f"ext-{n}" for n in range(MAX_OVERRIDES + 4))
POINT_RATES = ("1", "0.5", "0.37", "3", "10", "10000")
YEAR_EDGES = ("01-01", "01-02", "02-28", "02-29", "03-01", "12-30", "12-31")


@st.composite
def moments(draw: st.DrawFn) -> datetime:
    """A ``now`` near a year boundary or a leap day, at the millisecond precision BSON keeps."""
    year = draw(st.integers(2020, 2030))
    edge = draw(st.sampled_from(YEAR_EDGES))
    day = date(year, 2, 28) if edge == "02-29" and year % 4 else date.fromisoformat(f"{year}-{edge}")
    day = draw(st.sampled_from([day, day + timedelta(days=draw(st.integers(0, 364)))]))
    millis = draw(st.sampled_from([0, 1, 86_399_999]) | st.integers(0, 86_399_999))
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(milliseconds=millis)


@st.composite
def windows(draw: st.DrawFn, most: int) -> int:
    return draw(st.sampled_from([1, 2, 7, 30, 365, most]) | st.integers(1, most))


@st.composite
def retentions(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["NONE", "ROLLING", "END_OF_NEXT_YEAR"]))
    return {"kind": kind, "days": draw(windows(MAX_WINDOW_DAYS))} if kind == "ROLLING" else {"kind": kind}


@st.composite
def tier_lists(draw: st.DrawFn, points: bool) -> list[dict[str, Any]]:
    count = draw(st.integers(1, MAX_TIERS))
    steps = draw(st.lists(st.integers(1, 80_000), min_size=count - 1, max_size=count - 1))
    thresholds = list(itertools.accumulate([0, *steps]))  # points, or cents
    as_text = str if points else (lambda t: f"{t / 100:.2f}")
    return [{"name": f"T{index}", "threshold": as_text(t)} for index, t in enumerate(thresholds)]


@st.composite
def override_lists(draw: st.DrawFn, tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(POOL), max_size=MAX_OVERRIDES, unique=True))
    overrides = []
    for name in names:
        effect = draw(st.sampled_from(["NO_TIER", "FIXED_TIER", "FLOOR"]))
        tier = None if effect == "NO_TIER" else draw(st.sampled_from(tiers))["name"]
        overrides.append({"extension": name, "effect": effect, "tier": tier})
    return overrides


@st.composite
def policies(draw: st.DrawFn) -> TierPolicy:
    """Any valid policy: 1 to MAX_TIERS tiers, either metric, any window, lock and retention."""
    points = draw(st.booleans())
    tiers = draw(tier_lists(points))
    raw: dict[str, Any] = {
        "metric": "POINTS" if points else "NET_SPEND",
        "windowDays": draw(windows(MAX_WINDOW_DAYS)),
        "returnLockDays": draw(st.sampled_from([0, 14, 30, MAX_RETURN_LOCK_DAYS]) | st.integers(0, 60)),
        "retention": draw(retentions()),
        "tiers": [{"name": t["name"], "threshold": t["threshold"]} for t in tiers],
        "overrides": draw(override_lists(tiers)),
    }
    if points:
        raw["pointsPerUnit"] = draw(st.sampled_from(POINT_RATES))
    draft = check_draft(raw, "EUR", POOL)
    return TierPolicy(**draft.model_dump(), version=1, currency="EUR", published_at=NOW, published_by="t")


def edge_days(policy: TierPolicy, now: datetime) -> list[int]:
    """Days back at which an order enters or leaves what the policy counts, and their neighbours."""
    lock, window = policy.return_lock_days, policy.window_days
    lookback = (now.date() - policy.retention.lookback_start(now.date())).days
    edges = {0, lock, lock + window, lookback, lookback + lock, lookback + lock + window}
    return sorted({day + delta for day in edges for delta in (-1, 0, 1)})


def edge_amounts(policy: TierPolicy) -> list[int]:
    return [t + d for tier in policy.tiers for t in [policy.spend_threshold(tier)] for d in (-1, 0, 1)]


@st.composite
def buckets(draw: st.DrawFn, policy: TierPolicy) -> DayBucket:
    """A day: only visits (no money), orders fully returned or cancelled, or some net spend."""
    shape = draw(st.sampled_from(["visits", "returned", "cancelled", "spend", "spend"]))
    if shape == "visits":
        return DayBucket(counts={"page_view": draw(st.integers(1, 9))})
    gross = draw(st.sampled_from(edge_amounts(policy)) | st.integers(0, 200_000))
    gross = max(gross, 0)
    orders = {"order_completed": 1}
    if shape == "returned":
        return DayBucket(counts=orders, orders=1, gross=gross, order_returns=gross)
    if shape == "cancelled":
        return DayBucket(counts=orders, orders=1, gross=gross, cancelled=gross)
    returned = draw(st.sampled_from([0, 0, 1, gross // 3]))
    return DayBucket(counts=orders, orders=1, gross=gross, order_returns=returned)


@st.composite
def grants(draw: st.DrawFn, now: datetime) -> dict[str, ExtensionGrant]:
    names = draw(st.lists(st.sampled_from(POOL), max_size=4, unique=True))
    edge = [None, now - MILLI, now, now + MILLI, now - timedelta(days=40), now + timedelta(days=40)]
    return {
        name: ExtensionGrant(
            name=name, at=now - timedelta(days=90), by="t", reason="r", expires_at=draw(st.sampled_from(edge))
        )
        for name in names
    }


@st.composite
def histories(draw: st.DrawFn, number: int, policy: TierPolicy, now: datetime) -> Profile:
    reach = policy.days_needed + 3
    backs = st.sampled_from(edge_days(policy, now)) | st.integers(-2, reach)
    days = draw(st.lists(backs, max_size=8, unique=True))
    daily = {(now.date() - timedelta(days=back)).isoformat(): draw(buckets(policy)) for back in days}
    return Profile(
        id=f"p{number:02d}",
        extensions=draw(grants(now)),
        aggregates=Aggregates(daily=daily),
        merged_into=draw(st.sampled_from([None, None, None, None, "p00"])),
        created_at=now,
        updated_at=now,
    )


@st.composite
def agreement_cases(draw: st.DrawFn) -> tuple[TierPolicy, datetime, list[Profile]]:
    policy, now = draw(policies()), draw(moments())
    return policy, now, [draw(histories(n, policy, now)) for n in range(draw(st.integers(1, 12)))]


def domain_tier(policy: TierPolicy, profile: Profile, now: datetime) -> str | None:
    loyalty = evaluate_loyalty(policy, spend_by_day(profile.aggregates.daily), profile.extensions, now)
    return None if loyalty.tier is None else loyalty.tier.name


async def store_tiers(collection: Collection, policy: TierPolicy, now: datetime) -> dict[str, str | None]:
    ranked = await collection.aggregate(tier_rank_pipeline(policy, now))
    return {
        str(row["_id"]): None if row["rank"] == NO_TIER else policy.tiers[int(row["rank"])].name
        async for row in ranked
    }


@settings(settings.get_profile("tier-agreement"))
@given(agreement_cases())
async def test_the_store_pipeline_gives_each_profile_the_tier_loyalty_answers(
    database: Database, case: tuple[TierPolicy, datetime, list[Profile]]
) -> None:
    policy, now, population = case
    profiles = database["profiles"]
    await profiles.insert_many([profile_to_document(p) for p in population])
    try:
        found = await store_tiers(profiles, policy, now)
    finally:
        await profiles.delete_many({})
    assert found == {p.id: domain_tier(policy, p, now) for p in population if p.merged_into is None}


@st.composite
def cases(draw: st.DrawFn) -> tuple[TierPolicy, list[Profile]]:
    policy = draw(policies())
    return policy, [draw(histories(number, policy, NOW)) for number in range(draw(st.integers(0, 8)))]


def expected(policy: TierPolicy, population: list[Profile]) -> dict[str | None, int]:
    counted = Counter(domain_tier(policy, p, NOW) for p in population if p.merged_into is None)
    return {tier.name: counted[tier.name] for tier in policy.tiers} | {None: counted[None]}


async def insert(repos: Repositories, population: list[Profile]) -> None:
    for profile in population:
        await repos.profiles.insert(profile)


@settings(max_examples=30, deadline=None)
@given(cases())
async def test_the_database_counts_what_the_predicate_says(
    store_uri: str, case: tuple[TierPolicy, list[Profile]]
) -> None:
    """Counts over every partition of the embedded layout."""
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


async def test_a_one_tier_policy_counts_every_profile_in_the_entry_tier_or_excluded(
    repos: Repositories,
) -> None:
    one_tier = make_policy(
        {
            "metric": "NET_SPEND",
            "windowDays": 30,
            "retention": {"kind": "NONE"},
            "tiers": [{"name": "MEMBER", "threshold": "0"}],
            "overrides": [{"extension": "no-reward", "effect": "NO_TIER"}],
        }
    )
    await insert(repos, [customer(0, {}), customer(1, {3: 100_000}), customer(2, {3: 5}, "no-reward")])
    assert await repos.profiles.tier_counts(one_tier, NOW) == {"MEMBER": 2, None: 1}


async def test_a_policy_of_the_most_tiers_counts_each_tier(repos: Repositories) -> None:
    most = make_policy(
        {
            "metric": "POINTS",
            "pointsPerUnit": "1",
            "windowDays": 365,
            "retention": {"kind": "ROLLING", "days": 30},
            "tiers": [{"name": f"T{n}", "threshold": str(n * 100)} for n in range(MAX_TIERS)],
            "overrides": [{"extension": "vip", "effect": "FLOOR", "tier": f"T{MAX_TIERS - 2}"}],
        }
    )
    population = [customer(n, {5: n * 10_000}) for n in range(MAX_TIERS)]  # n * 100 points: T<n>
    population.append(customer(MAX_TIERS, {}, "vip"))
    expected = {f"T{n}": 1 for n in range(MAX_TIERS)} | {None: 0}
    expected[f"T{MAX_TIERS - 2}"] += 1
    await insert(repos, population)
    assert await repos.profiles.tier_counts(most, NOW) == expected
