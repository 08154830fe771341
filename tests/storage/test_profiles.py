"""The profile repository: documents round-trip, versioned writes, the bounded extension log."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from profilegate.domain.consents import Consent
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.profiles import Profile
from profilegate.storage.documents import Database
from profilegate.storage.profiles import EXTENSION_LOG_LENGTH
from profilegate.storage.store import Repositories
from tests.conftest import TEST_LAYOUT


def full_profile(now: datetime) -> Profile:
    berlin = timezone(timedelta(hours=1))
    return Profile(
        id="0b6f6a3c9d1e4f2a8b7c6d5e4f3a2b1c",
        identities=(
            Identity(type=IdentityType.EMAIL, value="ann.schmidt@example.com"),
            Identity(type=IdentityType.PHONE, value="+493012345678"),
            Identity(type=IdentityType.LOYALTY_CARD, value="LC00427788X"),
        ),
        traits={
            "firstName": "Ann",
            "address": {"city": "Köln", "zip": "50667", "geo": {"lat": 50.94, "lon": 6.96}},
            "tags": ["outdoor", "sale", {"since": 2019}],
            "orders": 2**62,
            "newsletter": True,
            "middleName": None,
            "emoji": "🛒",
        },
        consents={
            "email_marketing": Consent(
                purpose="email_marketing", granted=True, at=now - timedelta(days=3), source="web-signup-form"
            ),
            "ads": Consent(purpose="ads", granted=False, at=now.astimezone(berlin), source="app:settings"),
        },
        extensions={
            "employee": ExtensionGrant(name="employee", at=now, by="admin-key", reason="Staff since 2019"),
            "trial": ExtensionGrant(
                name="trial",
                at=now - timedelta(hours=2),
                by="partner-acme",
                reason="Campaign 42",
                source="rule:campaign",
                expires_at=now + timedelta(days=30, milliseconds=250),
            ),
        },
        version=3,
        created_at=now - timedelta(days=10),
        updated_at=now,
    )


def log_entry(index: int, now: datetime) -> dict[str, Any]:
    return {"action": "set", "name": "vip", "reason": f"entry {index}", "by": "admin-key", "at": now}


async def test_profile_round_trips_unchanged(repos: Repositories, now: datetime) -> None:
    profile = full_profile(now)

    await repos.profiles.insert(profile)
    stored = await repos.profiles.get(profile.id)

    assert stored == profile
    assert stored.identities == profile.identities  # order kept
    moments: list[datetime | None] = [stored.created_at, stored.updated_at]
    moments += [consent.at for consent in stored.consents.values()]
    moments += [grant.at for grant in stored.extensions.values()]
    moments += [stored.extensions["trial"].expires_at]
    for moment in moments:
        assert moment is not None
        assert moment.utcoffset() == timedelta(0), moment
    assert stored.extensions["employee"].expires_at is None
    assert stored.extensions["employee"].source == "manual"


async def test_missing_profile_is_none(repos: Repositories) -> None:
    assert await repos.profiles.get("does-not-exist") is None
    assert await repos.profiles.extension_log("does-not-exist") == []


async def test_replace_fields_at_the_expected_version_writes_and_bumps(
    repos: Repositories, now: datetime
) -> None:
    profile = full_profile(now)
    await repos.profiles.insert(profile)
    later = now + timedelta(minutes=5)
    updated = profile.model_copy(
        update={"traits": {"firstName": "Anna"}, "version": profile.version + 1, "updated_at": later}
    )

    assert await repos.profiles.replace_fields(updated, expected_version=profile.version)

    assert await repos.profiles.get(profile.id) == updated


async def test_replace_fields_with_a_stale_version_changes_nothing(
    repos: Repositories, database: Database, now: datetime
) -> None:
    profile = full_profile(now)
    await repos.profiles.insert(profile)
    collection = TEST_LAYOUT.partitioned(database, "profiles").for_id(profile.id)
    before = await collection.find_one({"_id": profile.id})
    stale = profile.model_copy(
        update={"traits": {}, "extensions": {}, "version": profile.version, "updated_at": now + timedelta(1)}
    )

    written = await repos.profiles.replace_fields(
        stale, expected_version=profile.version - 1, log=log_entry(0, now)
    )

    assert written is False
    assert await collection.find_one({"_id": profile.id}) == before
    assert await repos.profiles.get(profile.id) == profile
    assert await repos.profiles.extension_log(profile.id) == []


async def test_replace_fields_for_a_missing_profile_is_false(repos: Repositories, now: datetime) -> None:
    profile = full_profile(now)

    assert await repos.profiles.replace_fields(profile, expected_version=profile.version) is False
    assert await repos.profiles.get(profile.id) is None


async def test_extension_log_keeps_the_newest_entries_last(repos: Repositories, now: datetime) -> None:
    profile = full_profile(now)
    await repos.profiles.insert(profile)
    pushed = EXTENSION_LOG_LENGTH + 5
    current = profile
    for index in range(pushed):
        moment = now + timedelta(seconds=index)
        nxt = current.model_copy(update={"version": current.version + 1, "updated_at": moment})
        assert await repos.profiles.replace_fields(
            nxt, expected_version=current.version, log=log_entry(index, moment)
        )
        current = nxt

    log = await repos.profiles.extension_log(profile.id)

    assert EXTENSION_LOG_LENGTH == 50
    assert len(log) == EXTENSION_LOG_LENGTH
    assert [entry["reason"] for entry in log] == [f"entry {index}" for index in range(5, pushed)]
    assert log[-1]["at"] == now + timedelta(seconds=pushed - 1)
    assert log[-1]["at"].tzinfo is not None
    stored = await repos.profiles.get(profile.id)
    assert stored is not None
    assert stored.version == profile.version + pushed


async def test_datetimes_come_back_in_utc(repos: Repositories) -> None:
    tokyo = timezone(timedelta(hours=9))
    moment = datetime(2026, 11, 20, 19, 0, tzinfo=tokyo)
    profile = Profile(id="tz", created_at=moment, updated_at=moment)

    await repos.profiles.insert(profile)
    stored = await repos.profiles.get("tz")

    assert stored is not None
    assert stored.created_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert stored.created_at.utcoffset() == timedelta(0)
