"""upsert_profile: create or update by identity, merge-patch traits, consents, and all-or-nothing writes."""

import asyncio
import dataclasses
from datetime import datetime, timedelta

import pytest

from profilegate.domain.errors import IdentityConflict, InvalidInput, ProfileNotFound
from profilegate.domain.identities import Identity, IdentityType, normalise_identity
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.domain.traits import TraitLimits
from profilegate.service.profiles import (
    ORPHAN_GRACE,
    ConcurrentModification,
    ConsentChange,
    ProfileChange,
    ProfileRules,
    Upserted,
    upsert_profile,
)
from profilegate.storage.documents import Database
from profilegate.storage.store import Repositories


def email(value: str) -> Identity:
    return normalise_identity(IdentityType.EMAIL, value)


def phone(value: str) -> Identity:
    return normalise_identity(IdentityType.PHONE, value)


def customer(value: str) -> Identity:
    return normalise_identity(IdentityType.CUSTOMER_ID, value)


def by(identity: Identity) -> ProfileRef:
    return ProfileRef(identity=identity)


async def count_profiles(database: Database) -> int:
    names = [name for name in await database.list_collection_names() if name.startswith("profiles")]
    return sum([await database[name].count_documents({}) for name in names])


async def stored(repos: Repositories, profile_id: str) -> Profile:
    profile = await repos.profiles.get(profile_id)
    assert profile is not None
    return profile


async def create(
    repos: Repositories, rules: ProfileRules, now: datetime, *identities: Identity, **traits: object
) -> Profile:
    change = ProfileChange(ref=by(identities[0]), identities=identities[1:], traits=dict(traits))
    upserted = await upsert_profile(repos, change, rules, now)
    assert upserted.created
    return upserted.profile


# -- create and update ------------------------------------------------------------------------


async def test_upsert_by_a_new_identity_creates_a_profile(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    ann = email("  Ann.Schmidt@Example.COM ")
    change = ProfileChange(
        ref=by(ann),
        identities=(phone("030 12345678"),),
        traits={"firstName": "Ann", "address": {"city": "Berlin"}, "tmp": None},
        consents=(ConsentChange("email_marketing", True, "web-signup-form"),),
    )

    upserted = await upsert_profile(repos, change, rules, now)

    profile = upserted.profile
    assert upserted.created is True
    assert profile.identities == (email("ann.schmidt@example.com"), phone("+493012345678"))
    assert profile.traits == {"firstName": "Ann", "address": {"city": "Berlin"}}
    assert profile.consents["email_marketing"].granted is True
    assert profile.consents["email_marketing"].at == now
    assert (profile.version, profile.created_at, profile.updated_at) == (1, now, now)
    assert await stored(repos, profile.id) == profile
    assert await repos.identity_keys.owner("email:ann.schmidt@example.com") == profile.id
    assert await repos.identity_keys.owner("phone:+493012345678") == profile.id
    assert await count_profiles(database) == 1


async def test_second_upsert_with_the_same_identity_merges_into_the_same_profile(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    first = await create(
        repos,
        rules,
        now,
        email("ann@example.com"),
        firstName="Ann",
        address={"city": "Berlin", "zip": "10115"},
    )
    later = now + timedelta(minutes=1)
    patch = {"address": {"city": "Hamburg", "zip": None}, "firstName": None, "lastName": "Schmidt"}

    upserted = await upsert_profile(
        repos, ProfileChange(ref=by(email("ANN@example.com ")), traits=patch), rules, later
    )

    assert upserted.created is False
    assert upserted.profile.id == first.id
    assert upserted.profile.traits == {"address": {"city": "Hamburg"}, "lastName": "Schmidt"}
    assert (upserted.profile.version, upserted.profile.updated_at) == (2, later)
    assert upserted.profile.created_at == now
    assert await stored(repos, first.id) == upserted.profile
    assert await count_profiles(database) == 1


async def test_upsert_by_id_updates_and_adds_identities(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    first = await create(repos, rules, now, email("ann@example.com"))

    upserted = await upsert_profile(
        repos, ProfileChange(ref=ProfileRef(id=first.id), identities=(customer("C-4711"),)), rules, now
    )

    assert upserted.profile.identities == (email("ann@example.com"), customer("C-4711"))
    assert await repos.identity_keys.owner("customerId:C-4711") == first.id
    assert (await stored(repos, first.id)).identities == upserted.profile.identities


async def test_upsert_by_an_unknown_id_is_not_found(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    with pytest.raises(ProfileNotFound):
        await upsert_profile(
            repos, ProfileChange(ref=ProfileRef(id="nope"), identities=(email("x@example.com"),)), rules, now
        )

    assert await count_profiles(database) == 0
    assert await repos.identity_keys.owner("email:x@example.com") is None


async def test_an_upsert_that_changes_nothing_does_not_write(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    first = await create(repos, rules, now, email("ann@example.com"), customer("C-1"), firstName="Ann")

    upserted = await upsert_profile(
        repos,
        ProfileChange(
            ref=by(email("ann@example.com")), identities=(customer("C-1"),), traits={"firstName": "Ann"}
        ),
        rules,
        now + timedelta(hours=1),
    )

    assert upserted == Upserted(first, created=False)
    assert await stored(repos, first.id) == first


# -- identity conflicts: all or nothing ---------------------------------------------------------


async def test_identity_clash_on_create_stores_nothing(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    owner = await create(repos, rules, now, email("ann@example.com"), customer("C-4711"))
    change = ProfileChange(
        ref=by(email("bob@example.com")),
        identities=(phone("030 12345678"), customer("C-4711"), customer("C-9999")),
        traits={"firstName": "Bob"},
    )

    with pytest.raises(IdentityConflict) as raised:
        await upsert_profile(repos, change, rules, now)

    assert raised.value.conflict.key == "customerId:C-4711"
    assert raised.value.conflict.profile_id == owner.id
    for key in ("email:bob@example.com", "phone:+493012345678", "customerId:C-9999"):
        assert await repos.identity_keys.owner(key) is None, key
    assert await repos.identity_keys.owner("customerId:C-4711") == owner.id
    assert await count_profiles(database) == 1
    assert await stored(repos, owner.id) == owner


async def test_identity_clash_on_update_leaves_the_profile_as_it_was(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    ann = await create(repos, rules, now, email("ann@example.com"), customer("C-1"))
    bob = await create(repos, rules, now, email("bob@example.com"), firstName="Bob")
    change = ProfileChange(
        ref=by(email("bob@example.com")),
        identities=(phone("030 12345678"), customer("C-1")),
        traits={"firstName": "Robert"},
        consents=(ConsentChange("ads", True, "app"),),
    )

    with pytest.raises(IdentityConflict) as raised:
        await upsert_profile(repos, change, rules, now + timedelta(minutes=1))

    assert (raised.value.conflict.key, raised.value.conflict.profile_id) == ("customerId:C-1", ann.id)
    assert await stored(repos, bob.id) == bob
    assert await stored(repos, ann.id) == ann
    assert await repos.identity_keys.owner("phone:+493012345678") is None
    assert await count_profiles(database) == 2


async def test_ref_identity_owned_elsewhere_updates_that_profile(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    ann = await create(repos, rules, now, email("ann@example.com"), customer("C-1"))

    upserted = await upsert_profile(
        repos, ProfileChange(ref=by(customer("C-1")), traits={"vip": True}), rules, now
    )

    assert upserted.profile.id == ann.id
    assert upserted.created is False
    assert await count_profiles(database) == 1


# -- validation: nothing is written ---------------------------------------------------------------


async def test_oversized_traits_leave_the_stored_profile_unchanged(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    ann = await create(repos, rules, now, email("ann@example.com"), firstName="Ann")
    limit = rules.trait_limits.max_bytes
    change = ProfileChange(
        ref=by(email("ann@example.com")),
        identities=(customer("C-1"),),
        traits={"notes": "x" * limit, "firstName": "Anna"},
    )

    with pytest.raises(InvalidInput) as raised:
        await upsert_profile(repos, change, rules, now + timedelta(minutes=1))

    assert raised.value.field == "traits"
    after = await stored(repos, ann.id)
    assert after == ann
    assert after.version == ann.version
    assert await repos.identity_keys.owner("customerId:C-1") is None


async def test_traits_over_a_limit_on_create_store_nothing(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    small = dataclasses.replace(rules, trait_limits=TraitLimits(max_depth=2))
    change = ProfileChange(ref=by(email("ann@example.com")), traits={"address": {"geo": {"lat": 1}}})

    with pytest.raises(InvalidInput) as raised:
        await upsert_profile(repos, change, small, now)

    assert raised.value.field == "traits.address.geo"
    assert await count_profiles(database) == 0
    assert await repos.identity_keys.owner("email:ann@example.com") is None


@pytest.mark.parametrize(
    ("consents", "field"),
    [
        ((ConsentChange("newsletter", True, "web"),), "consents[0].purpose"),
        ((ConsentChange("ads", True, "web"), ConsentChange("Ads", False, "web")), "consents[1].purpose"),
        ((ConsentChange("ads", True, "web form"),), "consents[0].source"),
        ((ConsentChange("ads", True, "web\n"),), "consents[0].source"),
        ((ConsentChange("ads", True, ""),), "consents[0].source"),
    ],
)
async def test_bad_consent_is_refused_by_index(
    repos: Repositories,
    database: Database,
    rules: ProfileRules,
    now: datetime,
    consents: tuple[ConsentChange, ...],
    field: str,
) -> None:
    change = ProfileChange(ref=by(email("ann@example.com")), consents=consents)

    with pytest.raises(InvalidInput) as raised:
        await upsert_profile(repos, change, rules, now)

    assert raised.value.field == field
    assert await count_profiles(database) == 0


async def test_identity_cap_on_create(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    capped = dataclasses.replace(rules, max_identities=3)
    change = ProfileChange(
        ref=by(email("ann@example.com")),
        identities=(customer("C-1"), customer("C-2"), customer("C-3")),
    )

    with pytest.raises(InvalidInput) as raised:
        await upsert_profile(repos, change, capped, now)

    assert raised.value.field == "identities"
    assert await count_profiles(database) == 0
    assert await repos.identity_keys.owner("customerId:C-1") is None


async def test_identity_cap_on_update_counts_only_new_identities(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    capped = dataclasses.replace(rules, max_identities=3)
    ann = await create(repos, capped, now, email("ann@example.com"), customer("C-1"), customer("C-2"))
    ref = by(email("ann@example.com"))

    again = await upsert_profile(
        repos, ProfileChange(ref=ref, identities=(customer("C-1"), customer("C-2"))), capped, now
    )
    assert again.profile.version == ann.version

    with pytest.raises(InvalidInput) as raised:
        await upsert_profile(repos, ProfileChange(ref=ref, identities=(customer("C-3"),)), capped, now)
    assert raised.value.field == "identities"
    assert await stored(repos, ann.id) == ann
    assert await repos.identity_keys.owner("customerId:C-3") is None


# -- concurrency and orphans ---------------------------------------------------------------------


async def test_concurrent_upserts_of_a_new_identity_create_one_profile(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    ref = by(email("rush@example.com"))
    await asyncio.gather(*(repos.identity_keys.owner("email:x") for _ in range(8)))  # a connection each

    results = await asyncio.gather(
        *(upsert_profile(repos, ProfileChange(ref=ref, traits={f"k{i}": i}), rules, now) for i in range(8))
    )

    ids = {result.profile.id for result in results}
    assert len(ids) == 1
    assert sum(result.created for result in results) == 1
    assert await count_profiles(database) == 1
    (profile_id,) = ids
    assert await repos.identity_keys.owner("email:rush@example.com") == profile_id
    assert (await stored(repos, profile_id)).traits == {f"k{i}": i for i in range(8)}


async def test_an_old_orphaned_identity_is_taken_over(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    claimed = now - ORPHAN_GRACE - timedelta(seconds=1)
    assert (
        await repos.identity_keys.claim("email:ann@example.com", "died-half-way", claimed) == "died-half-way"
    )

    upserted = await upsert_profile(
        repos, ProfileChange(ref=by(email("ann@example.com")), traits={"firstName": "Ann"}), rules, now
    )

    assert upserted.created is True
    assert upserted.profile.id != "died-half-way"
    assert await repos.identity_keys.owner("email:ann@example.com") == upserted.profile.id
    assert await repos.identity_keys.claimed_at("email:ann@example.com") == now
    assert await count_profiles(database) == 1


async def test_a_fresh_orphan_is_a_conflict(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    claimed = now - ORPHAN_GRACE + timedelta(seconds=1)
    await repos.identity_keys.claim("customerId:C-1", "in-flight", claimed)
    change = ProfileChange(ref=by(email("ann@example.com")), identities=(customer("C-1"),))

    with pytest.raises(IdentityConflict) as raised:
        await upsert_profile(repos, change, rules, now)

    assert (raised.value.conflict.key, raised.value.conflict.profile_id) == ("customerId:C-1", "in-flight")
    assert await repos.identity_keys.owner("customerId:C-1") == "in-flight"
    assert await repos.identity_keys.owner("email:ann@example.com") is None
    assert await count_profiles(database) == 0


async def test_a_fresh_orphan_under_the_ref_asks_for_a_retry(
    repos: Repositories, database: Database, rules: ProfileRules, now: datetime
) -> None:
    await repos.identity_keys.claim("email:ann@example.com", "in-flight", now - timedelta(seconds=1))

    with pytest.raises(ConcurrentModification):
        await upsert_profile(repos, ProfileChange(ref=by(email("ann@example.com"))), rules, now)

    assert await repos.identity_keys.owner("email:ann@example.com") == "in-flight"
    assert await count_profiles(database) == 0


# -- consents -------------------------------------------------------------------------------------


async def test_the_same_consent_answer_keeps_its_original_time(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    ref = by(email("ann@example.com"))
    answer = ConsentChange("email_marketing", True, "web-signup-form")
    first = await upsert_profile(repos, ProfileChange(ref=ref, consents=(answer,)), rules, now)

    resent = await upsert_profile(
        repos, ProfileChange(ref=ref, consents=(answer,)), rules, now + timedelta(1)
    )
    assert resent.profile == first.profile

    later = now + timedelta(days=2)
    with_traits = await upsert_profile(
        repos, ProfileChange(ref=ref, consents=(answer,), traits={"x": 1}), rules, later
    )
    assert with_traits.profile.version == first.profile.version + 1
    assert (await stored(repos, first.profile.id)).consents["email_marketing"].at == now


async def test_a_changed_consent_answer_is_recorded_at_the_new_time(
    repos: Repositories, rules: ProfileRules, now: datetime
) -> None:
    ref = by(email("ann@example.com"))
    await upsert_profile(
        repos, ProfileChange(ref=ref, consents=(ConsentChange("ads", True, "web"),)), rules, now
    )
    later = now + timedelta(days=1)

    upserted = await upsert_profile(
        repos,
        ProfileChange(ref=ref, consents=(ConsentChange("ads", False, "app:settings"),)),
        rules,
        later,
    )

    consent = (await stored(repos, upserted.profile.id)).consents["ads"]
    assert (consent.granted, consent.source, consent.at) == (False, "app:settings", later)
