"""Merges through the service: interrupted merges are finished, nothing is counted twice."""

from datetime import datetime, timedelta

from profilegate.domain.events import EventRules
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.keys import Principal, Role
from profilegate.domain.merges import MAX_MERGED_FROM
from profilegate.domain.refs import ProfileRef
from profilegate.service.identify import IdentifyRules, _mark, identify
from profilegate.service.profiles import ProfileRules
from profilegate.service.resolve import find_profile
from profilegate.service.tracking import TrackingRules, track
from profilegate.storage.store import Repositories

ADMIN = Principal(name="ops", role=Role.ADMIN)
EMAIL = normalise_identity(IdentityType.EMAIL, "ann@example.com")
ANON = normalise_identity(IdentityType.ANONYMOUS_ID, "anon-9")


def views(count: int, at: datetime) -> list[object]:
    return [
        {
            "id": f"view-{index}",
            "type": "product_view",
            "at": at.isoformat(),
            "channel": "web",
            "anonymousId": ANON.value,
            "properties": {"sku": "A1", "category": "shoes"},
        }
        for index in range(count)
    ]


def purchase(at: datetime) -> list[object]:
    return [
        {
            "id": "order-event",
            "type": "order_completed",
            "at": at.isoformat(),
            "channel": "store",
            "identity": {"type": "EMAIL", "value": EMAIL.value},
            "properties": {
                "orderId": "o-1",
                "total": "10.00",
                "currency": "EUR",
                "items": [{"sku": "B", "price": "10.00"}],
            },
        }
    ]


async def test_an_interrupted_merge_is_finished_by_the_next_identify(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    tracking = TrackingRules(events=EventRules(), profiles=rules)
    identifying = IdentifyRules(profiles=rules, blocked_identities=frozenset(), retention_days=400)
    earlier = now - timedelta(hours=1)
    await track(repos, purchase(earlier), tracking, earlier)
    await track(repos, views(3, now - timedelta(minutes=5)), tracking, now)
    known = await find_profile(repos, ProfileRef(identity=EMAIL))
    anonymous = await find_profile(repos, ProfileRef(identity=ANON))
    assert known is not None
    assert anonymous is not None

    await _mark(repos, anonymous.id, known.id, now)  # the process died right after step 1
    half = await find_profile(repos, ProfileRef(identity=ANON))
    assert half is not None
    assert half.id == known.id
    assert half.aggregates.counts.get("product_view", 0) == 0

    done = await identify(repos, ANON, (EMAIL,), {}, identifying, ADMIN, now)
    assert done.profile.id == known.id
    assert done.profile.merged_from == (anonymous.id,)
    assert done.profile.aggregates.counts == {"order_completed": 1, "product_view": 3}

    again = await identify(repos, ANON, (EMAIL,), {}, identifying, ADMIN, now)
    assert again.profile.aggregates == done.profile.aggregates
    assert again.merged == ()


async def test_events_tracked_during_a_merge_reach_the_winner_once(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    tracking = TrackingRules(events=EventRules(), profiles=rules)
    identifying = IdentifyRules(profiles=rules, blocked_identities=frozenset(), retention_days=400)
    await track(repos, purchase(now - timedelta(hours=2)), tracking, now)
    await track(repos, views(2, now - timedelta(hours=1)), tracking, now)
    await identify(repos, ANON, (EMAIL,), {}, identifying, ADMIN, now)

    replay = await track(repos, views(4, now - timedelta(minutes=1)), tracking, now)
    assert [r.status.value for r in replay.results] == ["duplicate", "duplicate", "accepted", "accepted"]
    merged = await find_profile(repos, ProfileRef(identity=EMAIL))
    assert merged is not None
    assert merged.aggregates.counts == {"order_completed": 1, "product_view": 4}


async def test_a_merge_older_than_the_merged_from_cap_is_not_taken_in_twice(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    tracking = TrackingRules(events=EventRules(), profiles=rules)
    identifying = IdentifyRules(profiles=rules, blocked_identities=frozenset(), retention_days=400)
    await track(repos, purchase(now - timedelta(hours=2)), tracking, now)
    await track(repos, views(2, now - timedelta(hours=1)), tracking, now)
    anonymous = await find_profile(repos, ProfileRef(identity=ANON))
    assert anonymous is not None
    done = (await identify(repos, ANON, (EMAIL,), {}, identifying, ADMIN, now)).profile
    # A hundred later merges pushed this one out of mergedFrom, and its identity still points
    # at the loser (as after a crash before the keys were moved): only the merge log knows.
    later = tuple(f"{n:032x}" for n in range(MAX_MERGED_FROM))
    pushed_out = done.model_copy(update={"merged_from": later, "version": done.version + 1})
    assert await repos.profiles.replace_fields(pushed_out, expected_version=done.version)
    await repos.identity_keys.repoint(ANON.key, done.id, anonymous.id)

    again = await identify(repos, ANON, (EMAIL,), {}, identifying, ADMIN, now)

    assert again.profile.id == done.id
    assert again.profile.aggregates.counts == {"order_completed": 1, "product_view": 2}
