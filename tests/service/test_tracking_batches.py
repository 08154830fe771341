"""The batched tracking path on the real store: batches racing for the same new customers,
references of one person by id and by identity in one batch, a replay of a whole batch."""

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from profilegate.domain.events import EventRules
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.refs import ProfileRef
from profilegate.service.profiles import ProfileRules
from profilegate.service.resolve import find_profile
from profilegate.service.tracking import Status, TrackingRules, track
from profilegate.storage.store import Repositories
from tests.service.raw_events import email_ref, event

CUSTOMERS = 30


@pytest.fixture
def tracking(rules: ProfileRules) -> TrackingRules:
    return TrackingRules(events=EventRules(), profiles=rules)


def view(event_id: str, ref: dict[str, Any], now: datetime) -> dict[str, Any]:
    return event(event_id, "product_view", now - timedelta(minutes=1), ref, sku="A1", category="shoes")


def customer(number: int) -> dict[str, Any]:
    return email_ref(f"c{number}@example.com")


async def test_batches_racing_for_the_same_new_customers_all_land(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    batches = [[view(f"b{b}-c{c}", customer(c), now) for c in range(CUSTOMERS)] for b in range(4)]
    results = await asyncio.gather(*(track(repos, batch, tracking, now) for batch in batches))
    assert [result.count(Status.ACCEPTED) for result in results] == [CUSTOMERS] * 4
    for number in range(CUSTOMERS):
        ref = ProfileRef(identity=normalise_identity(IdentityType.EMAIL, f"c{number}@example.com"))
        profile = await find_profile(repos, ref)
        assert profile is not None
        assert profile.aggregates.counts["product_view"] == 4


async def test_one_person_by_id_and_by_e_mail_in_one_batch(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await track(repos, [view("first", customer(1), now)], tracking, now)
    ref = ProfileRef(identity=normalise_identity(IdentityType.EMAIL, "c1@example.com"))
    known = await find_profile(repos, ref)
    assert known is not None
    batch = [view("by-mail", customer(1), now), view("by-id", {"profileId": known.id}, now)]
    result = await track(repos, batch, tracking, now)
    assert [outcome.status for outcome in result.results] == [Status.ACCEPTED, Status.ACCEPTED]
    profile = await find_profile(repos, ref)
    assert profile is not None
    assert profile.aggregates.counts["product_view"] == 3


async def test_a_replayed_batch_of_new_customers_is_all_duplicates(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    batch = [view(f"e{c}", customer(c), now) for c in range(CUSTOMERS)]
    assert (await track(repos, batch, tracking, now)).count(Status.ACCEPTED) == CUSTOMERS
    assert (await track(repos, batch, tracking, now)).count(Status.DUPLICATE) == CUSTOMERS
