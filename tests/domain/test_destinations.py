"""What a destination is sent for a change (pure), and which URLs and addresses it refuses."""

from datetime import UTC, datetime
from typing import Any

import pytest

from profilegate.domain.changes import Change, ChangeKind
from profilegate.domain.consents import Consent
from profilegate.domain.destinations import (
    DestinationSpec,
    Selection,
    SentRecord,
    check_url,
    hashed_identifiers,
    messages_for,
    refused_address,
)
from profilegate.domain.errors import InvalidInput
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.profiles import Profile

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SPEC = DestinationSpec(
    id="esp",
    name="ESP",
    url="https://esp.example.com/hook",
    selection=Selection(segments=("vip",), extensions=("newsletter",)),
    consent_purpose="email_marketing",
    fields=("traits.country",),
)


def profile(granted: bool | None = True) -> Profile:
    consents = (
        {}
        if granted is None
        else {"email_marketing": Consent(purpose="email_marketing", granted=granted, at=NOW, source="t")}
    )
    return Profile(
        id="p1",
        identities=(Identity(type=IdentityType.EMAIL, value="ann@example.com"),),
        traits={"country": "DE", "name": "Ann"},
        consents=consents,
        created_at=NOW,
        updated_at=NOW,
    )


def change(kind: ChangeKind, segments: tuple[str, ...] = (), **payload: Any) -> Change:
    return Change(
        seq=7, at=NOW, kind=kind, profile_id="p1", payload=payload, shareable=False, segments=segments
    )


@pytest.mark.parametrize(
    ("case", "kind", "payload", "granted", "sent", "types"),
    [
        ("entered", ChangeKind.SEGMENT_ENTERED, {"segment": "vip"}, True, None, ["segment.entered"]),
        ("another segment", ChangeKind.SEGMENT_ENTERED, {"segment": "other"}, True, None, []),
        ("no consent", ChangeKind.SEGMENT_ENTERED, {"segment": "vip"}, False, None, []),
        ("never asked", ChangeKind.SEGMENT_ENTERED, {"segment": "vip"}, None, None, []),
        ("extension", ChangeKind.EXTENSION_SET, {"name": "newsletter"}, True, None, ["extension.set"]),
        ("other extension", ChangeKind.EXTENSION_SET, {"name": "vip"}, True, None, []),
        ("tier not asked", ChangeKind.TIER_CHANGED, {"to": "gold"}, True, None, []),
        (
            "withdrawn after a send",
            ChangeKind.CONSENT_CHANGED,
            {"purpose": "email_marketing", "granted": False},
            False,
            SentRecord({"email": ("h",)}, ("vip",)),
            ["segment.left", "profile.removed"],
        ),
        (
            "withdrawn, nothing sent",
            ChangeKind.CONSENT_CHANGED,
            {"purpose": "email_marketing", "granted": False},
            False,
            None,
            [],
        ),
        (
            "another purpose",
            ChangeKind.CONSENT_CHANGED,
            {"purpose": "ads", "granted": False},
            True,
            SentRecord(),
            [],
        ),
        ("erased", ChangeKind.PROFILE_ERASED, {}, None, SentRecord({"email": ("h",)}), ["profile.removed"]),
        ("erased, never sent", ChangeKind.PROFILE_ERASED, {}, None, None, []),
    ],
)
def test_what_a_change_sends(
    case: str,
    kind: ChangeKind,
    payload: dict[str, Any],
    granted: bool | None,
    sent: SentRecord | None,
    types: list[str],
) -> None:
    shopper = None if kind is ChangeKind.PROFILE_ERASED else profile(granted)
    outcome = messages_for(SPEC, change(kind, **payload), shopper, sent)
    assert [message["type"] for message in outcome.messages] == types, case


def test_a_message_carries_only_the_fields_named_and_a_removal_none() -> None:
    hashing = DestinationSpec(**{**SPEC.__dict__, "hash_identifiers": True})
    entered = messages_for(hashing, change(ChangeKind.SEGMENT_ENTERED, segment="vip"), profile(), None)
    [message] = entered.messages
    assert message["profile"] == {"traits": {"country": "DE"}}
    assert message["hashedIdentifiers"] == {"email": list(hashed_identifiers(profile())["email"])}
    assert entered.record == SentRecord(hashed_identifiers(profile()), ("vip",))
    removed = messages_for(hashing, change(ChangeKind.PROFILE_ERASED), None, entered.record)
    assert removed.forget
    assert all("profile" not in one and "Ann" not in str(one) for one in removed.messages)


def test_granting_the_purpose_enters_the_segments_the_profile_is_in() -> None:
    granted = change(ChangeKind.CONSENT_CHANGED, ("vip", "other"), purpose="email_marketing", granted=True)
    outcome = messages_for(SPEC, granted, profile(), None)
    assert [(m["type"], m["segment"]) for m in outcome.messages] == [("segment.entered", "vip")]


def test_hashes_are_sha256_of_the_normalised_values() -> None:
    assert hashed_identifiers(profile())["email"] == (
        "71d4f55f72fa128dfb468a1a3901507c804b74316488744d769d7f4b16696476",
    )


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_addresses_refused(address: str, refused: str | None) -> None:
    found = refused_address(address)
    assert (found is None) == (refused is None), found
    if refused is not None:
        assert refused in str(found)


@pytest.mark.parametrize(
    ("url", "development", "problem"),
    [
        ("https://esp.example.com/hook", False, None),
        ("http://esp.example.com/hook", True, None),
        ("http://esp.example.com/hook", False, "https://"),
        ("ftp://esp.example.com", True, "https://"),
        ("https://user:pw@esp.example.com/", False, "user name"),
        ("https:///nohost", False, "host"),
        ("https://esp.example.com/#x", False, "fragment"),
        ("https://esp.example.com:99999/", False, "not a URL"),
    ],
)
def test_urls(url: str, development: bool, problem: str | None) -> None:
    if problem is None:
        assert check_url(url, development=development) == "esp.example.com"
        return
    with pytest.raises(InvalidInput) as refused:
        check_url(url, development=development)
    assert refused.value.field == "input.url"
    assert problem in refused.value.reason


def test_a_tracked_events_own_type_and_time_never_replace_the_messages() -> None:
    tracking = DestinationSpec(
        **{**SPEC.__dict__, "selection": Selection(kinds=frozenset({ChangeKind.EVENT_TRACKED}))}
    )
    tracked = change(ChangeKind.EVENT_TRACKED, type="page_view", at="2026-11-19T08:00:00Z", eventId="e1")

    [message] = messages_for(tracking, tracked, profile(), None).messages

    assert (message["type"], message["at"]) == ("event.tracked", "2026-11-20T10:00:00Z")
    assert message["event"] == {"type": "page_view", "at": "2026-11-19T08:00:00Z", "eventId": "e1"}


def test_a_consent_change_of_another_purpose_is_a_message_for_a_destination_that_asks_for_them() -> None:
    consents = DestinationSpec(
        **{**SPEC.__dict__, "selection": Selection(kinds=frozenset({ChangeKind.CONSENT_CHANGED}))}
    )
    other = change(ChangeKind.CONSENT_CHANGED, purpose="ads", granted=False)

    assert [m["type"] for m in messages_for(consents, other, profile(), None).messages] == ["consent.changed"]
