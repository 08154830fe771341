"""The merge guards and the rules of an unmerge, as pure functions."""

from datetime import UTC, datetime, timedelta

import pytest

from profilegate.domain.aggregates import Aggregates
from profilegate.domain.consents import Consent
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.merges import (
    MergeBlocked,
    MergeRecord,
    absorb,
    check_customer_ids,
    check_known_apart,
    loser_restored,
    winner_before,
    winner_restored,
)
from profilegate.domain.profiles import Profile
from profilegate.domain.traits import TraitLimits

T0 = datetime(2026, 11, 1, tzinfo=UTC)
MERGED = T0 + timedelta(days=10)
NOW = T0 + timedelta(days=20)


def profile(profile_id: str, *identities: tuple[IdentityType, str], **fields: object) -> Profile:
    held = tuple(Identity(type=kind, value=value) for kind, value in identities)
    return Profile(id=profile_id, identities=held, created_at=T0, updated_at=T0, **fields)


def consent(purpose: str, granted: bool, at: datetime) -> Consent:
    return Consent(purpose=purpose, granted=granted, at=at, source="web")


def grant(name: str, at: datetime, expires_at: datetime | None = None) -> ExtensionGrant:
    return ExtensionGrant(name=name, at=at, by="ops", reason="r", expires_at=expires_at)


@pytest.mark.parametrize(
    ("held", "refused"),
    [
        ([[("customerId", "C-1")], [("email", "a@x.de")]], False),
        ([[("customerId", "C-1")], [("customerId", "C-2")]], True),
        ([[("customerId", "C-1"), ("email", "a@x.de")], [("anonymousId", "v"), ("customerId", "C-2")]], True),
        ([[("anonymousId", "v")], [("anonymousId", "w")], [("customerId", "C-9")]], False),
    ],
)
def test_profiles_holding_different_customer_ids_are_kept_apart(
    held: list[list[tuple[str, str]]], refused: bool
) -> None:
    profiles = [profile(f"p{n}", *[(IdentityType(k), v) for k, v in ids]) for n, ids in enumerate(held)]
    if refused:
        with pytest.raises(MergeBlocked, match="C-1 and C-2"):
            check_customer_ids(profiles)
    else:
        check_customer_ids(profiles)


def test_a_storefront_merges_at_most_one_known_profile() -> None:
    anonymous = profile("a", (IdentityType.ANONYMOUS_ID, "v"))
    known = profile("k", (IdentityType.EMAIL, "k@x.de"))
    check_known_apart([anonymous, known])
    with pytest.raises(MergeBlocked, match="storefront key never merges"):
        check_known_apart(
            [known, profile("j", (IdentityType.ANONYMOUS_ID, "w"), (IdentityType.PHONE, "+4930"))]
        )


def merged_pair() -> tuple[Profile, Profile, Profile, MergeRecord]:
    winner = profile(
        "w",
        (IdentityType.EMAIL, "w@x.de"),
        traits={"name": "Wim", "size": 42},
        consents={"email": consent("email", False, T0), "sms": consent("sms", True, T0)},
        extensions={"vip": grant("vip", T0), "employee": grant("employee", T0)},
    )
    loser = profile(
        "l",
        (IdentityType.EMAIL, "l@x.de"),
        traits={"name": "Lea", "city": "Bonn"},
        consents={"email": consent("email", True, T0 + timedelta(days=1))},
        extensions={"influencer": grant("influencer", T0), "old": grant("old", T0, T0 + timedelta(days=15))},
    )
    merged = absorb(winner, loser, now=MERGED, retention_days=400, limits=TraitLimits())
    record = MergeRecord(
        loser="l",
        winner="w",
        at=MERGED,
        by="ops",
        reason="r",
        identities=("email:l@x.de",),
        before=winner_before(winner, merged),
    )
    return winner, loser.model_copy(update={"merged_into": "w"}), merged, record


def test_the_winner_gets_back_what_it_held_before_and_keeps_what_changed_after() -> None:
    winner, _, merged, record = merged_pair()
    later = MERGED + timedelta(days=1)
    changed = merged.model_copy(
        update={
            "identities": (*merged.identities, Identity(type=IdentityType.PHONE, value="+4930123")),
            "traits": {**merged.traits, "size": 43, "shoe": 9},
            "consents": {**merged.consents, "sms": consent("sms", False, later)},
            "extensions": {
                name: g
                for name, g in {**merged.extensions, "newsletter": grant("newsletter", later)}.items()
                if name != "employee"  # removed after the merge
            },
        }
    )

    restored = winner_restored(changed, record, Aggregates(), NOW)

    assert [i.value for i in restored.identities] == ["w@x.de", "+4930123"]
    assert restored.traits == {"name": "Wim", "size": 43, "shoe": 9}, "the loser's city goes"
    assert restored.consents == {"email": winner.consents["email"], "sms": changed.consents["sms"]}
    assert set(restored.extensions) == {"vip", "newsletter"}
    assert restored.merged_from == ()
    assert restored.version == changed.version + 1


def test_without_a_record_of_the_winner_before_it_keeps_its_traits_consents_and_extensions() -> None:
    _, _, merged, record = merged_pair()
    old = MergeRecord(**{**record.__dict__, "before": None})

    restored = winner_restored(merged, old, Aggregates(), NOW)

    assert (restored.traits, restored.consents, restored.extensions) == (
        merged.traits,
        merged.consents,
        merged.extensions,
    )
    assert [i.value for i in restored.identities] == ["w@x.de"]


def test_the_loser_gets_its_state_at_the_merge_without_expired_extensions() -> None:
    _, loser, _, _ = merged_pair()

    restored = loser_restored(loser, Aggregates(orders=2), NOW)

    assert restored.merged_into is None
    assert (restored.traits, restored.consents) == (loser.traits, loser.consents)
    assert set(restored.extensions) == {"influencer"}, "old expired on day 15"
    assert restored.aggregates.orders == 2
