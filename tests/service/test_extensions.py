"""set_extension / remove_extension: the catalogue, partner rules, provenance, expiry and the log."""

import asyncio
from datetime import datetime, timedelta

import pytest

from profilegate.domain.errors import InvalidInput, NotPermitted, ProfileNotFound, UnknownExtension
from profilegate.domain.extensions import MAX_EXTENSIONS_PER_PROFILE, ExtensionDefinition
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.keys import Principal, Role
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.service.extensions import define_extension, remove_extension, set_extension
from profilegate.service.profiles import ProfileChange, ProfileRules, upsert_profile
from profilegate.storage.store import Repositories

ADMIN = Principal(name="ops-console", role=Role.ADMIN, key_id="k-admin")
INGEST = Principal(name="shop-backend", role=Role.INGEST, key_id="k-ingest")
PARTNER = Principal(name="partner-acme", role=Role.PARTNER, key_id="k-partner")
REF = ProfileRef(identity=normalise_identity(IdentityType.EMAIL, "lena@example.com"))


@pytest.fixture
async def profile(repos: Repositories, rules: ProfileRules, now: datetime) -> Profile:
    for definition in (
        ExtensionDefinition(name="employee", description="Staff member"),
        ExtensionDefinition(name="influencer", description="Creator programme", partner_settable=True),
        ExtensionDefinition(name="trial", description="Trial membership", default_lifetime_days=30),
    ):
        await define_extension(repos, definition)
    upserted = await upsert_profile(repos, ProfileChange(ref=REF, traits={"firstName": "Lena"}), rules, now)
    return upserted.profile


async def stored(repos: Repositories, profile: Profile) -> Profile:
    found = await repos.profiles.get(profile.id)
    assert found is not None
    return found


async def test_set_extension_records_provenance(repos: Repositories, profile: Profile, now: datetime) -> None:
    result = await set_extension(repos, REF, "employee", "  Staff since 2019 ", None, ADMIN, now)

    assert result.changed is True
    grant = result.profile.extensions["employee"]
    assert (grant.by, grant.reason, grant.at, grant.source) == (
        "ops-console",
        "Staff since 2019",
        now,
        "manual",
    )
    assert grant.expires_at is None
    after = await stored(repos, profile)
    assert after.extensions == {"employee": grant}
    assert after.version == profile.version + 1
    assert after.traits == profile.traits


async def test_unknown_extension_is_refused(repos: Repositories, profile: Profile, now: datetime) -> None:
    with pytest.raises(UnknownExtension) as raised:
        await set_extension(repos, REF, "platinum", "why not", None, ADMIN, now)

    assert raised.value.name == "platinum"
    with pytest.raises(UnknownExtension):
        await remove_extension(repos, REF, "platinum", "why not", ADMIN, now)
    assert await stored(repos, profile) == profile
    assert await repos.profiles.extension_log(profile.id) == []


async def test_unknown_profile_is_not_found(repos: Repositories, profile: Profile, now: datetime) -> None:
    with pytest.raises(ProfileNotFound):
        await set_extension(repos, ProfileRef(id="missing"), "employee", "staff", None, ADMIN, now)


async def test_partner_may_not_touch_a_private_extension(
    repos: Repositories, profile: Profile, now: datetime
) -> None:
    with pytest.raises(NotPermitted):
        await set_extension(repos, REF, "employee", "Staff", None, PARTNER, now)
    await set_extension(repos, REF, "employee", "Staff", None, ADMIN, now)
    with pytest.raises(NotPermitted):
        await remove_extension(repos, REF, "employee", "Not staff", PARTNER, now)

    assert "employee" in (await stored(repos, profile)).extensions
    assert [entry["by"] for entry in await repos.profiles.extension_log(profile.id)] == ["ops-console"]


async def test_partner_sets_and_removes_a_partner_settable_extension(
    repos: Repositories, profile: Profile, now: datetime
) -> None:
    result = await set_extension(repos, REF, "influencer", "Joined creator programme", None, PARTNER, now)

    assert result.changed is True
    assert result.profile.extensions["influencer"].by == "partner-acme"
    removed = await remove_extension(repos, REF, "influencer", "Left programme", PARTNER, now)
    assert removed.changed is True
    assert "influencer" not in (await stored(repos, profile)).extensions


async def test_setting_again_with_the_same_reason_changes_nothing(
    repos: Repositories, profile: Profile, now: datetime
) -> None:
    first = await set_extension(repos, REF, "employee", "Staff since 2019", None, ADMIN, now)

    again = await set_extension(
        repos, REF, "employee", "Staff since 2019", None, INGEST, now + timedelta(days=1)
    )

    assert again.changed is False
    assert again.profile == first.profile
    assert again.profile.extensions["employee"].at == now
    assert again.profile.extensions["employee"].by == "ops-console"
    assert await stored(repos, profile) == first.profile
    assert len(await repos.profiles.extension_log(profile.id)) == 1


async def test_setting_again_with_another_reason_replaces_the_grant(
    repos: Repositories, profile: Profile, now: datetime
) -> None:
    await set_extension(repos, REF, "employee", "Staff since 2019", None, ADMIN, now)
    later = now + timedelta(days=1)

    again = await set_extension(repos, REF, "employee", "Rehired", None, INGEST, later)

    assert again.changed is True
    grant = (await stored(repos, profile)).extensions["employee"]
    assert (grant.reason, grant.by, grant.at) == ("Rehired", "shop-backend", later)


async def test_default_lifetime_sets_the_expiry(repos: Repositories, profile: Profile, now: datetime) -> None:
    result = await set_extension(repos, REF, "trial", "Signed up", None, ADMIN, now)

    assert result.profile.extensions["trial"].expires_at == now + timedelta(days=30)
    assert (await stored(repos, profile)).extensions["trial"].expires_at == now + timedelta(days=30)


async def test_requested_expiry_beats_the_default_lifetime(
    repos: Repositories, profile: Profile, now: datetime
) -> None:
    until = now + timedelta(days=3)

    result = await set_extension(repos, REF, "trial", "Short trial", until, ADMIN, now)

    assert result.profile.extensions["trial"].expires_at == until
    again = await set_extension(repos, REF, "trial", "Short trial", until, ADMIN, now + timedelta(hours=1))
    assert again.changed is False


async def test_the_same_expiry_to_the_microsecond_changes_nothing(
    repos: Repositories, profile: Profile, now: datetime
) -> None:
    end_of_day = now.replace(hour=23, minute=59, second=59, microsecond=999_999)
    first = await set_extension(repos, REF, "employee", "Contract ends", end_of_day, ADMIN, now)

    again = await set_extension(repos, REF, "employee", "Contract ends", end_of_day, ADMIN, now)

    assert again.changed is False
    assert again.profile == first.profile
    assert len(await repos.profiles.extension_log(profile.id)) == 1


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(seconds=-1), timedelta(days=-400)])
async def test_expiry_not_in_the_future_is_refused(
    repos: Repositories, profile: Profile, now: datetime, offset: timedelta
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await set_extension(repos, REF, "employee", "Staff", now + offset, ADMIN, now)

    assert raised.value.field == "expiresAt"
    assert await stored(repos, profile) == profile


async def test_empty_reason_is_refused(repos: Repositories, profile: Profile, now: datetime) -> None:
    with pytest.raises(InvalidInput) as raised:
        await set_extension(repos, REF, "employee", "   ", None, ADMIN, now)

    assert raised.value.field == "reason"
    assert await stored(repos, profile) == profile


async def test_remove_then_remove_again(repos: Repositories, profile: Profile, now: datetime) -> None:
    await set_extension(repos, REF, "employee", "Staff", None, ADMIN, now)
    later = now + timedelta(hours=1)

    removed = await remove_extension(repos, REF, "employee", "Left the company", ADMIN, later)
    again = await remove_extension(repos, REF, "employee", "Left the company", ADMIN, later)

    assert removed.changed is True
    assert again.changed is False
    assert "employee" not in removed.profile.extensions
    after = await stored(repos, profile)
    assert after == removed.profile == again.profile
    assert len(await repos.profiles.extension_log(profile.id)) == 2


async def test_an_expired_extension_is_absent_and_can_be_set_again(
    repos: Repositories, profile: Profile, now: datetime
) -> None:
    await set_extension(repos, REF, "trial", "Signed up", None, ADMIN, now)
    expired = now + timedelta(days=30)

    assert (await stored(repos, profile)).active_extensions(expired) == {}
    assert (await remove_extension(repos, REF, "trial", "cleanup", ADMIN, expired)).changed is False
    renewed = await set_extension(repos, REF, "trial", "Signed up", None, ADMIN, expired)
    assert renewed.changed is True
    assert renewed.profile.extensions["trial"].expires_at == expired + timedelta(days=30)


async def test_extension_log_records_who_did_what_and_why(
    repos: Repositories, profile: Profile, now: datetime
) -> None:
    t1, t2, t3 = now, now + timedelta(minutes=1), now + timedelta(minutes=2)
    await set_extension(repos, REF, "employee", "Staff since 2019", None, ADMIN, t1)
    await set_extension(repos, REF, "influencer", "Joined creator programme", None, PARTNER, t2)
    await remove_extension(repos, REF, "employee", "Left the company", INGEST, t3)
    await remove_extension(repos, REF, "employee", "Left the company", INGEST, t3)  # no change, no entry

    log = await repos.profiles.extension_log(profile.id)

    assert log == [
        {"action": "set", "name": "employee", "reason": "Staff since 2019", "by": "ops-console", "at": t1},
        {
            "action": "set",
            "name": "influencer",
            "reason": "Joined creator programme",
            "by": "partner-acme",
            "at": t2,
        },
        {
            "action": "remove",
            "name": "employee",
            "reason": "Left the company",
            "by": "shop-backend",
            "at": t3,
        },
    ]


async def test_concurrent_changes_to_one_profile_all_land(
    repos: Repositories, profile: Profile, now: datetime
) -> None:
    names = [f"campaign-{index}" for index in range(8)]
    for name in names:
        await define_extension(repos, ExtensionDefinition(name=name, description=name))
    await asyncio.gather(*(repos.profiles.get(profile.id) for _ in names))  # one connection per writer

    results = await asyncio.gather(
        *(set_extension(repos, REF, name, "Campaign", None, ADMIN, now) for name in names)
    )

    assert all(result.changed for result in results)
    after = await stored(repos, profile)
    assert set(after.extensions) == set(names)
    assert after.version == profile.version + len(names)
    assert sorted(entry["name"] for entry in await repos.profiles.extension_log(profile.id)) == names


async def test_an_extension_past_the_per_profile_cap_is_refused_and_nothing_changes(
    repos: Repositories, profile: Profile, now: datetime
) -> None:
    for index in range(MAX_EXTENSIONS_PER_PROFILE + 1):
        await define_extension(repos, ExtensionDefinition(name=f"badge-{index}", description="A badge"))
    for index in range(MAX_EXTENSIONS_PER_PROFILE):
        await set_extension(repos, REF, f"badge-{index}", "earned", None, ADMIN, now)
    full = await stored(repos, profile)

    with pytest.raises(InvalidInput) as refused:
        await set_extension(repos, REF, f"badge-{MAX_EXTENSIONS_PER_PROFILE}", "earned", None, ADMIN, now)

    assert refused.value.field == "name"
    assert f"at most {MAX_EXTENSIONS_PER_PROFILE} extensions" in refused.value.reason
    assert await stored(repos, profile) == full
    again = await set_extension(repos, REF, "badge-0", "earned again", None, ADMIN, now)
    assert again.changed is True  # one it carries may still be set again
