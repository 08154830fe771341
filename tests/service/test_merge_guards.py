"""The merge guards of ``identify``: different customer ids, and the storefront's known profiles."""

from datetime import datetime, timedelta

import pytest

from profilegate.domain.identities import Identity, IdentityType, normalise_identity
from profilegate.domain.keys import Principal, Role
from profilegate.domain.merges import MergeBlocked
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.service.identify import IdentifyRules, identify
from profilegate.service.profiles import ProfileChange, ProfileRules, upsert_profile
from profilegate.service.resolve import find_profile
from profilegate.storage.store import Repositories

INGEST = Principal(name="shop", role=Role.INGEST)


def customer(value: str) -> Identity:
    return normalise_identity(IdentityType.CUSTOMER_ID, value)


def email(value: str) -> Identity:
    return normalise_identity(IdentityType.EMAIL, value)


def anonymous(value: str) -> Identity:
    return normalise_identity(IdentityType.ANONYMOUS_ID, value)


async def created(repos: Repositories, rules: ProfileRules, now: datetime, *held: Identity) -> Profile:
    change = ProfileChange(ref=ProfileRef(identity=held[0]), identities=held[1:], traits={"seen": 1})
    return (await upsert_profile(repos, change, rules, now)).profile


def identify_rules(rules: ProfileRules) -> IdentifyRules:
    return IdentifyRules(profiles=rules, blocked_identities=frozenset(), retention_days=400)


async def test_profiles_with_different_customer_ids_are_never_merged(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    one = await created(repos, rules, now, customer("C-1"), email("ann@example.com"))
    two = await created(repos, rules, now, customer("C-2"), email("bob@example.com"))

    with pytest.raises(MergeBlocked) as refused:
        await identify(
            repos,
            None,
            (email("ann@example.com"), email("bob@example.com")),
            {},
            identify_rules(rules),
            INGEST,
            now,
        )

    assert refused.value.field == "identities"
    assert "C-1 and C-2" in refused.value.message
    assert "mergeProfiles" in refused.value.message
    assert await repos.profiles.get(one.id) == one, "nothing is written"
    assert await repos.profiles.get(two.id) == two
    assert await repos.merges.involving([one.id, two.id]) == []


async def test_a_customer_id_merges_with_profiles_that_hold_none(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    known = await created(repos, rules, now, customer("C-1"))
    await created(repos, rules, now + timedelta(minutes=1), email("ann@example.com"))

    done = await identify(
        repos, None, (customer("C-1"), email("ann@example.com")), {}, identify_rules(rules), INGEST, now
    )

    assert done.profile.id == known.id
    assert len(done.merged) == 1


async def test_without_may_merge_known_two_known_profiles_are_not_merged(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    ann = await created(repos, rules, now, email("ann@example.com"))
    visitor = await created(
        repos, rules, now + timedelta(minutes=1), anonymous("anon-1"), email("ann@shop.example")
    )
    wanted = (email("ann@example.com"),)

    with pytest.raises(MergeBlocked) as refused:
        await identify(
            repos, anonymous("anon-1"), wanted, {}, identify_rules(rules), INGEST, now, may_merge_known=False
        )

    assert refused.value.field == "identities"
    assert "storefront" in refused.value.message
    assert await repos.profiles.get(ann.id) == ann
    assert await repos.profiles.get(visitor.id) == visitor
    merged = await identify(repos, anonymous("anon-1"), wanted, {}, identify_rules(rules), INGEST, now)
    assert merged.merged == (visitor.id,), "a server key may"


async def test_without_may_merge_known_an_anonymous_visitor_still_merges(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    ann = await created(repos, rules, now, email("ann@example.com"))
    visitor = await created(repos, rules, now + timedelta(minutes=1), anonymous("anon-1"))

    done = await identify(
        repos,
        anonymous("anon-1"),
        (email("ann@example.com"),),
        {},
        identify_rules(rules),
        INGEST,
        now,
        may_merge_known=False,
    )

    assert (done.profile.id, done.merged) == (ann.id, (visitor.id,))
    found = await find_profile(repos, ProfileRef(identity=anonymous("anon-1")))
    assert found is not None
    assert found.id == ann.id
