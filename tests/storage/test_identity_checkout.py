"""The checkout payload an identity key carries: only the profile the key names writes it, only a
newer version replaces it, and a key that changes hands or is released keeps none of it."""

import asyncio
import random
from datetime import UTC, date, datetime, timedelta

from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.profiles import Profile
from profilegate.domain.tiers import day_number
from profilegate.storage.profiles import LoyaltyView
from profilegate.storage.store import Repositories
from tests.storage.test_profile_checkout import profile

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ANN = Identity(type=IdentityType.EMAIL, value="ann@example.com")
KEY = ANN.key
ORDER_DAY = day_number(date(2026, 11, 1))


def held(version: int = 1, gross: int = 10_000, profile_id: str = "p-1") -> Profile:
    return profile(version, gross).model_copy(update={"id": profile_id, "identities": (ANN,)})


async def carried(repos: Repositories) -> tuple[str, LoyaltyView | None] | None:
    return await repos.profiles.checkout_by_identity(KEY)


async def payload(repos: Repositories) -> tuple[str, LoyaltyView]:
    """The key's owner and the payload it carries, which must be there."""
    found = await carried(repos)
    assert found is not None
    owner, view = found
    assert view is not None
    return owner, view


async def test_a_profile_write_carries_its_payload_onto_its_key(repos: Repositories) -> None:
    await repos.identity_keys.claim(KEY, "p-1", NOW)
    assert await carried(repos) == ("p-1", None)  # claimed, not written yet

    await repos.profiles.insert(held())

    assert await repos.profiles.replace_fields(held(version=2, gross=30_000), expected_version=1)

    owner, view = await payload(repos)
    assert (owner, view.spend, view.extensions) == ("p-1", {ORDER_DAY: 29_500}, held().extensions)


async def test_no_key_comes_to_exist_and_a_key_naming_another_profile_is_left_alone(
    repos: Repositories,
) -> None:
    await repos.profiles.insert(held())
    assert await carried(repos) is None  # the profile holds the identity, but never claimed it

    await repos.identity_keys.claim(KEY, "p-2", NOW)
    await repos.profiles.refresh_checkout(held(version=2))

    assert await carried(repos) == ("p-2", None)


async def test_only_a_newer_version_replaces_the_payload_also_when_writes_race(repos: Repositories) -> None:
    await repos.identity_keys.claim(KEY, "p-1", NOW)
    versions = list(range(1, 41))
    random.Random(3).shuffle(versions)

    await asyncio.gather(*(repos.profiles.carry_checkout(held(v, 1_000 * v)) for v in versions))
    await repos.profiles.carry_checkout(held(7, 1))  # a late, older writer

    _, view = await payload(repos)
    assert view.spend == {ORDER_DAY: 40_000 - 500}


async def test_a_repointed_key_drops_the_losers_payload_until_the_winner_writes(repos: Repositories) -> None:
    await repos.identity_keys.claim(KEY, "p-1", NOW)
    await repos.profiles.carry_checkout(held(version=9))

    await repos.identity_keys.repoint(KEY, "p-1", "p-2")
    assert await carried(repos) == ("p-2", None)
    await repos.profiles.carry_checkout(held(version=9, gross=1))  # the loser, late: not its key now
    assert await carried(repos) == ("p-2", None)

    await repos.profiles.carry_checkout(held(version=2, gross=20_000, profile_id="p-2"))
    owner, view = await payload(repos)
    assert (owner, view.spend) == ("p-2", {ORDER_DAY: 19_500})


async def test_an_orphaned_key_taken_over_drops_the_payload(repos: Repositories) -> None:
    await repos.identity_keys.claim(KEY, "p-1", NOW)
    await repos.profiles.carry_checkout(held())

    assert await repos.identity_keys.take_over(KEY, "p-1", "p-2", NOW + timedelta(minutes=5))

    assert await carried(repos) == ("p-2", None)


async def test_a_released_key_keeps_nothing(repos: Repositories) -> None:
    await repos.identity_keys.claim(KEY, "p-1", NOW)
    await repos.profiles.carry_checkout(held())

    assert await repos.identity_keys.release_held_by(KEY, ["p-1"])
    await repos.profiles.carry_checkout(held(version=2))  # a write racing the erasure

    assert await carried(repos) is None


async def test_a_key_claimed_for_a_new_profile_is_created_with_its_payload(repos: Repositories) -> None:
    await repos.identity_keys.claim(KEY, "p-1", NOW, carrying=held())

    owner, view = await payload(repos)
    assert (owner, view.spend) == ("p-1", {ORDER_DAY: 9_500})
    await repos.identity_keys.claim(KEY, "p-2", NOW, carrying=held(profile_id="p-2"))  # taken: no change
    assert (await payload(repos))[0] == "p-1"
