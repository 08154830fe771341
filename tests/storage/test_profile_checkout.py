"""The checkout copy of a profile: what a tier needs, small, never older than the profile's last write."""

from datetime import UTC, date, datetime, timedelta

from profilegate.domain.aggregates import Aggregates, DayBucket
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.profiles import Profile
from profilegate.domain.tiers import day_number
from profilegate.service.tracking import track
from profilegate.settings import Settings
from profilegate.storage.documents import Database
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.store import Repositories
from tests.conftest import TEST_LAYOUT
from tests.service.raw_events import email_ref, order

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def profile(version: int = 1, gross: int = 10_000) -> Profile:
    daily = {
        "2026-11-01": DayBucket(orders=1, gross=gross, order_returns=500),
        "2026-11-02": DayBucket(counts={"page_view": 3}),
    }
    grant = ExtensionGrant(name="vip", at=NOW, by="ops", reason="top", expires_at=NOW + timedelta(days=3))
    return Profile(
        id="p-1",
        extensions={"vip": grant},
        aggregates=Aggregates(daily=daily),
        version=version,
        created_at=NOW,
        updated_at=NOW,
    )


def checkout(database: Database) -> PartitionedCollection:
    return TEST_LAYOUT.partitioned(database, "profile_checkout")


async def test_the_view_holds_net_spend_per_order_day_and_the_extensions(repos: Repositories) -> None:
    await repos.profiles.insert(profile())
    view = await repos.profiles.loyalty_view("p-1")
    assert view is not None
    assert view.spend == {day_number(date(2026, 11, 1)): 9_500}
    assert view.extensions == profile().extensions
    assert view.merged_into is None


async def test_a_write_refreshes_it_and_an_older_version_never_overwrites_a_newer(
    repos: Repositories,
) -> None:
    await repos.profiles.insert(profile())
    newer = profile(version=2, gross=50_000)
    assert await repos.profiles.replace_fields(newer, expected_version=1)
    await repos.profiles.refresh_checkout(profile(version=1))  # a late, older writer
    view = await repos.profiles.loyalty_view("p-1")
    assert view is not None
    assert view.spend == {day_number(date(2026, 11, 1)): 49_500}


async def test_without_its_checkout_copy_the_profile_itself_answers(
    repos: Repositories, database: Database
) -> None:
    await repos.profiles.insert(profile())
    await checkout(database).for_id("p-1").delete_one({"_id": "p-1"})
    view = await repos.profiles.loyalty_view("p-1")
    assert view is not None
    assert view.spend == {day_number(date(2026, 11, 1)): 9_500}


async def test_a_replay_heals_a_copy_left_behind_by_a_write_that_died(
    repos: Repositories, database: Database
) -> None:
    tracking = Settings(mongodb_uri="mongodb://unused").tracking_rules
    batch = [order("e-1", "o-1", "80.00", NOW - timedelta(days=3), email_ref("ann@example.com"))]
    await track(repos, batch, tracking, NOW)
    profile_id = (await repos.identity_keys.owner("email:ann@example.com")) or ""
    before = await repos.profiles.loyalty_view(profile_id)
    # the process died after the profile's write, before its checkout copy was written
    await (
        checkout(database)
        .for_id(profile_id)
        .update_one({"_id": profile_id}, {"$set": {"spend": b"", "version": 1}})
    )
    stale = await repos.profiles.loyalty_view(profile_id)
    assert stale is not None
    assert stale.spend == {}

    replayed = await track(repos, batch, tracking, NOW)

    assert [outcome.status.value for outcome in replayed.results] == ["duplicate"]
    assert await repos.profiles.loyalty_view(profile_id) == before
