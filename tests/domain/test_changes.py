"""What a profile write tells the feed, what a scope shows of it, and cursors."""

from datetime import UTC, datetime, timedelta

import pytest

from profilegate.domain.changes import (
    FULL_SCOPE,
    Change,
    ChangeKind,
    Scope,
    Standing,
    decode_cursor,
    encode_cursor,
    merge_change,
    profile_changes,
)
from profilegate.domain.consents import Consent
from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import Channel, EventType, TrackedEvent
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ANN = Identity(type=IdentityType.EMAIL, value="ann@example.com")
SHARING = "partner_sharing"
NOWHERE = Standing(segments=(), tier="MEMBER", tier_reason="ENTRY", policy_version=1)


def profile(**fields: object) -> Profile:
    return Profile.model_validate({"id": "p1", "created_at": NOW, "updated_at": NOW, **fields})


def consent(granted: bool) -> Consent:
    return Consent(purpose=SHARING, granted=granted, at=NOW, source="signup")


def kinds(before: Profile | None, after: Profile, **standing: Standing) -> list[ChangeKind]:
    changes = profile_changes(
        before,
        after,
        standing.get("was", NOWHERE if before else None),
        standing.get("now", NOWHERE),
        NOW,
        partner_purpose=SHARING,
    )
    return [change.kind for change in changes]


def test_a_new_profile_is_created_with_its_consents_and_extensions() -> None:
    grant = ExtensionGrant(name="vip", at=NOW, by="admin", reason="r")
    created = profile(identities=(ANN,), consents={SHARING: consent(True)}, extensions={"vip": grant})
    assert kinds(None, created) == [
        ChangeKind.PROFILE_CREATED,
        ChangeKind.CONSENT_CHANGED,
        ChangeKind.EXTENSION_SET,
    ]


def test_an_unchanged_profile_tells_nothing() -> None:
    same = profile(identities=(ANN,), traits={"a": 1})
    assert kinds(same, same.model_copy(update={"version": 2})) == []


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (profile(), profile(traits={"a": 1}), [ChangeKind.PROFILE_UPDATED]),
        (profile(), profile(identities=(ANN,)), [ChangeKind.PROFILE_UPDATED]),
        (profile(), profile(consents={SHARING: consent(False)}), [ChangeKind.CONSENT_CHANGED]),
        (
            profile(consents={SHARING: consent(False)}),
            profile(consents={SHARING: consent(True)}),
            [ChangeKind.CONSENT_CHANGED],
        ),
        (
            profile(extensions={"vip": ExtensionGrant(name="vip", at=NOW, by="a", reason="r")}),
            profile(),
            [ChangeKind.EXTENSION_REMOVED],
        ),
        (
            profile(extensions={"vip": ExtensionGrant(name="vip", at=NOW, by="a", reason="r")}),
            profile(extensions={"vip": ExtensionGrant(name="vip", at=NOW, by="a", reason="other")}),
            [ChangeKind.EXTENSION_SET],
        ),
    ],
)
def test_each_difference_is_one_change(before: Profile, after: Profile, expected: list[ChangeKind]) -> None:
    assert kinds(before, after) == expected


def test_segments_entered_and_left_and_a_tier_change_follow_the_profile_changes() -> None:
    was = Standing(segments=("a", "b"), tier="MEMBER", tier_reason="ENTRY", policy_version=3)
    now = Standing(segments=("b", "c"), tier="GOLD", tier_reason="THRESHOLD", policy_version=3)
    changes = profile_changes(profile(), profile(), was, now, NOW, partner_purpose=SHARING)
    assert [(c.kind, c.payload) for c in changes] == [
        (ChangeKind.SEGMENT_ENTERED, {"segment": "c"}),
        (ChangeKind.SEGMENT_LEFT, {"segment": "a"}),
        (
            ChangeKind.TIER_CHANGED,
            {"from": "MEMBER", "to": "GOLD", "reason": "THRESHOLD", "policyVersion": 3},
        ),
    ]
    assert all(c.segments == ("b", "c") for c in changes)


def test_tracked_events_are_told_one_by_one_and_shareable_follows_the_consent() -> None:
    events = [
        TrackedEvent(
            id=f"e{n}", type=EventType.PRODUCT_VIEW, at=NOW, channel=Channel.WEB, target=ProfileRef(id="p1")
        )
        for n in range(2)
    ]
    shared = profile(consents={SHARING: consent(True)})
    changes = profile_changes(shared, shared, NOWHERE, NOWHERE, NOW, partner_purpose=SHARING, events=events)
    assert [(c.kind, c.payload["eventId"], c.shareable) for c in changes] == [
        (ChangeKind.EVENT_TRACKED, "e0", True),
        (ChangeKind.EVENT_TRACKED, "e1", True),
    ]
    withdrawn = profile(consents={SHARING: consent(False)})
    assert not profile_changes(shared, withdrawn, NOWHERE, NOWHERE, NOW, partner_purpose=SHARING)[0].shareable


def test_a_merge_is_told_on_the_winner() -> None:
    change = merge_change(profile(version=4), "loser", NOWHERE, NOW, SHARING)
    assert (change.kind, change.profile_id, change.payload) == (
        ChangeKind.PROFILES_MERGED,
        "p1",
        {"mergedFrom": "loser", "version": 4},
    )


PAYLOAD = {"version": 2, "changed": ["traits"], "identities": [{"type": "email"}], "traits": {"a": 1, "b": 2}}


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ((), {"version": 2, "changed": ["traits"]}),
        (("traits",), {"version": 2, "changed": ["traits"], "traits": {"a": 1, "b": 2}}),
        (("traits.b",), {"version": 2, "changed": ["traits"], "traits": {"b": 2}}),
        (("identities",), {"version": 2, "changed": ["traits"], "identities": [{"type": "email"}]}),
    ],
)
def test_a_partner_scope_shows_only_the_personal_fields_it_grants(
    fields: tuple[str, ...], shown: dict[str, object]
) -> None:
    assert Scope(fields=frozenset(fields)).project(PAYLOAD) == shown
    assert FULL_SCOPE.project(PAYLOAD) == PAYLOAD


def test_a_partner_scope_admits_only_shareable_changes_of_its_kinds() -> None:
    def change(kind: ChangeKind, shareable: bool) -> Change:
        return Change(seq=1, at=NOW, kind=kind, profile_id="p", payload={}, shareable=shareable)

    scope = Scope(kinds=frozenset({ChangeKind.TIER_CHANGED}))
    assert scope.admits(change(ChangeKind.TIER_CHANGED, True))
    assert not scope.admits(change(ChangeKind.TIER_CHANGED, False))
    assert not scope.admits(change(ChangeKind.EVENT_TRACKED, True))
    assert FULL_SCOPE.admits(change(ChangeKind.EVENT_TRACKED, False))


def test_a_cursor_holds_its_place_and_time_and_knows_when_it_expired() -> None:
    cursor = decode_cursor(encode_cursor(42, NOW))
    assert (cursor.seq, cursor.at) == (42, NOW)
    assert not cursor.expired(NOW + timedelta(days=7), timedelta(days=7))
    assert cursor.expired(NOW + timedelta(days=7, milliseconds=1), timedelta(days=7))


@pytest.mark.parametrize("bad", ["", "nonsense!", "MTI=", encode_cursor(1, NOW)[:-3] + "###"])
def test_a_cursor_the_feed_never_gave_out_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(bad)
    assert raised.value.field == "after"
