"""track on the real store: replays, a crash between the log and the profile, batch limits, addressing."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import bson
import pytest

from profilegate.domain.aggregates import Aggregates
from profilegate.domain.events import EventRules, parse_event
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.service.profiles import ProfileChange, ProfileRules, upsert_profile
from profilegate.service.resolve import find_profile
from profilegate.service.tracking import Status, TrackingRules, apply_to_profile, log_events, track
from profilegate.storage.documents import Database, Document
from profilegate.storage.layout import Layout
from profilegate.storage.store import Repositories, open_client, prepare
from tests.service.raw_events import email_ref, event, shopping_batch

ANN = "ann@example.com"
ANN_REF = ProfileRef(identity=normalise_identity(IdentityType.EMAIL, ANN))


@pytest.fixture
def tracking(rules: ProfileRules) -> TrackingRules:
    return TrackingRules(events=EventRules(), profiles=rules)


@pytest.fixture
async def fresh_repos(store_uri: str) -> AsyncIterator[Repositories]:
    """A second, empty database on the same store: where a profile gets a batch just once."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    client = open_client(store_uri)
    try:
        yield await prepare(client[name], Layout.embedded(2, 100))
        await client.drop_database(name)
    finally:
        await client.close()


async def profile_of(repos: Repositories, ref: ProfileRef = ANN_REF) -> Profile:
    profile = await find_profile(repos, ref)
    assert profile is not None
    return profile


async def stored_document(database: Database, profile_id: str) -> Document:
    for name in await database.list_collection_names():
        if name.startswith("profiles"):
            found = await database[name].find_one({"_id": profile_id})
            if found is not None:
                return found
    raise AssertionError(f"no document for profile {profile_id}")


async def logged_ids(repos: Repositories) -> list[str]:
    return [document["_id"] async for document in repos.events.scan()]


async def test_a_batch_sent_twice_is_all_duplicates_and_changes_not_a_byte(
    repos: Repositories, database: Database, tracking: TrackingRules, now: datetime
) -> None:
    batch = shopping_batch(ANN, now)
    first = await track(repos, batch, tracking, now)
    assert first.count(Status.ACCEPTED) == len(batch)
    profile = await profile_of(repos)
    before = await stored_document(database, profile.id)

    again = await track(repos, batch, tracking, now + timedelta(minutes=5))

    assert [(r.id, r.status) for r in again.results] == [(e["id"], Status.DUPLICATE) for e in batch]
    after = await stored_document(database, profile.id)
    for key in ("aggregates", "daily", "recentEventIds", "version", "updatedAt"):
        assert bson.encode({key: after[key]}) == bson.encode({key: before[key]}), key


async def test_a_crash_after_the_log_write_is_healed_by_the_replay(
    repos: Repositories, fresh_repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    batch = shopping_batch(ANN, now)
    profile = (await upsert_profile(repos, ProfileChange(ref=ANN_REF), tracking.profiles, now)).profile
    events = [parse_event(raw, tracking.events, now) for raw in batch]
    await log_events(repos, profile.id, events, now)  # ... and the process dies here
    assert (await profile_of(repos)).aggregates == Aggregates()

    replayed = await track(repos, batch, tracking, now)

    assert replayed.count(Status.ACCEPTED) == len(batch)
    await track(fresh_repos, batch, tracking, now)
    assert (await profile_of(repos)).aggregates == (await profile_of(fresh_repos)).aggregates


async def test_a_profile_updated_before_the_log_write_counts_each_event_once(
    repos: Repositories, fresh_repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    batch = shopping_batch(ANN, now)
    profile = (await upsert_profile(repos, ProfileChange(ref=ANN_REF), tracking.profiles, now)).profile
    events = [parse_event(raw, tracking.events, now) for raw in batch]
    await apply_to_profile(repos, profile.id, events, tracking.retention_days, now)  # the log never got them

    replayed = await track(repos, batch, tracking, now)

    assert replayed.count(Status.DUPLICATE) == len(batch)
    await track(fresh_repos, batch, tracking, now)
    assert (await profile_of(repos)).aggregates == (await profile_of(fresh_repos)).aggregates
    # Tracking always logs before it applies, so this order never happens in the product; a
    # replay of events the profile's guard holds is not logged again.
    assert await logged_ids(repos) == []


async def test_a_batch_over_the_limit_is_rejected_whole(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    small = TrackingRules(events=tracking.events, profiles=tracking.profiles, max_batch=3)
    batch = shopping_batch(ANN, now)[:4]

    result = await track(repos, batch, small, now)

    assert [r.status for r in result.results] == [Status.REJECTED] * 4
    assert [r.id for r in result.results] == [e["id"] for e in batch]
    assert {r.reason for r in result.results} == {"the batch holds 4 events, more than the limit of 3"}
    assert await find_profile(repos, ANN_REF) is None
    assert await logged_ids(repos) == []


async def test_an_event_for_an_unknown_email_creates_the_profile(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    view = event("v1", "product_view", now, email_ref("new.customer@example.com"), sku="A1", category="bags")

    result = await track(repos, [view], tracking, now)

    assert [r.status for r in result.results] == [Status.ACCEPTED]
    ref = ProfileRef(identity=normalise_identity(IdentityType.EMAIL, "new.customer@example.com"))
    created = await profile_of(repos, ref)
    assert created.aggregates.categories == {"bags": 1}
    assert created.created_at == now


async def test_an_event_for_an_unknown_profile_id_is_rejected(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    view = event("v1", "page_view", now, {"profileId": "no-such-profile"})
    known = event("v2", "page_view", now, email_ref(ANN))

    result = await track(repos, [view, known], tracking, now)

    assert [(r.status, r.reason) for r in result.results] == [
        (Status.REJECTED, "no profile for id no-such-profile"),
        (Status.ACCEPTED, None),
    ]
    assert await find_profile(repos, ProfileRef(id="no-such-profile")) is None
    assert await logged_ids(repos) == ["v2"]
