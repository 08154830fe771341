"""Identity keys: the first claim wins, only the owner releases, orphans can be taken over."""

from datetime import datetime, timedelta

from profilegate.storage.store import Repositories

KEY = "email:ann@example.com"


async def test_unclaimed_key_has_no_owner(repos: Repositories) -> None:
    assert await repos.identity_keys.owner(KEY) is None
    assert await repos.identity_keys.claimed_at(KEY) is None


async def test_first_claim_wins(repos: Repositories, now: datetime) -> None:
    assert await repos.identity_keys.claim(KEY, "profile-a", now) == "profile-a"

    assert await repos.identity_keys.owner(KEY) == "profile-a"
    assert await repos.identity_keys.claimed_at(KEY) == now


async def test_claiming_an_owned_key_reports_the_owner(repos: Repositories, now: datetime) -> None:
    await repos.identity_keys.claim(KEY, "profile-a", now)

    owner = await repos.identity_keys.claim(KEY, "profile-b", now + timedelta(seconds=1))

    assert owner == "profile-a"
    assert await repos.identity_keys.owner(KEY) == "profile-a"
    assert await repos.identity_keys.claimed_at(KEY) == now


async def test_claiming_again_by_the_owner_is_harmless(repos: Repositories, now: datetime) -> None:
    await repos.identity_keys.claim(KEY, "profile-a", now)

    assert await repos.identity_keys.claim(KEY, "profile-a", now + timedelta(hours=1)) == "profile-a"
    assert await repos.identity_keys.claimed_at(KEY) == now


async def test_keys_are_independent(repos: Repositories, now: datetime) -> None:
    await repos.identity_keys.claim(KEY, "profile-a", now)

    assert await repos.identity_keys.claim("email:bob@example.com", "profile-b", now) == "profile-b"
    assert await repos.identity_keys.claim("phone:+493012345678", "profile-a", now) == "profile-a"
    assert await repos.identity_keys.owner(KEY) == "profile-a"
    assert await repos.identity_keys.owner("email:bob@example.com") == "profile-b"


async def test_only_the_owner_releases(repos: Repositories, now: datetime) -> None:
    await repos.identity_keys.claim(KEY, "profile-a", now)

    await repos.identity_keys.release(KEY, "profile-b")
    assert await repos.identity_keys.owner(KEY) == "profile-a"

    await repos.identity_keys.release(KEY, "profile-a")
    assert await repos.identity_keys.owner(KEY) is None
    assert await repos.identity_keys.claim(KEY, "profile-b", now) == "profile-b"


async def test_releasing_an_unclaimed_key_is_harmless(repos: Repositories) -> None:
    await repos.identity_keys.release(KEY, "profile-a")

    assert await repos.identity_keys.owner(KEY) is None


async def test_take_over_re_points_an_older_claim(repos: Repositories, now: datetime) -> None:
    claimed = now - timedelta(minutes=5)
    await repos.identity_keys.claim(KEY, "ghost", claimed)

    assert await repos.identity_keys.take_over(KEY, "ghost", "profile-b", now) is True

    assert await repos.identity_keys.owner(KEY) == "profile-b"
    assert await repos.identity_keys.claimed_at(KEY) == now


async def test_take_over_needs_the_named_orphan(repos: Repositories, now: datetime) -> None:
    await repos.identity_keys.claim(KEY, "profile-a", now - timedelta(minutes=5))

    assert await repos.identity_keys.take_over(KEY, "ghost", "profile-b", now) is False
    assert await repos.identity_keys.owner(KEY) == "profile-a"


async def test_take_over_refuses_a_claim_not_older_than_now(repos: Repositories, now: datetime) -> None:
    await repos.identity_keys.claim(KEY, "ghost", now)

    assert await repos.identity_keys.take_over(KEY, "ghost", "profile-b", now) is False
    assert await repos.identity_keys.owner(KEY) == "ghost"
    assert await repos.identity_keys.claimed_at(KEY) == now


async def test_take_over_happens_once(repos: Repositories, now: datetime) -> None:
    await repos.identity_keys.claim(KEY, "ghost", now - timedelta(minutes=5))

    first = await repos.identity_keys.take_over(KEY, "ghost", "profile-b", now)
    second = await repos.identity_keys.take_over(KEY, "ghost", "profile-c", now + timedelta(seconds=1))

    assert (first, second) == (True, False)
    assert await repos.identity_keys.owner(KEY) == "profile-b"


async def test_take_over_of_an_unclaimed_key_does_nothing(repos: Repositories, now: datetime) -> None:
    assert await repos.identity_keys.take_over(KEY, "ghost", "profile-b", now) is False
    assert await repos.identity_keys.owner(KEY) is None
