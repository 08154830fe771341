"""Extension grants in force or expired, expiry from the catalogue, and extension names."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from profilegate.domain.errors import InvalidInput
from profilegate.domain.extensions import (
    ExtensionDefinition,
    ExtensionGrant,
    active_extensions,
    check_extension_name,
)
from profilegate.domain.reasons import check_reason

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def grant(name: str, expires_at: datetime | None) -> ExtensionGrant:
    return ExtensionGrant(
        name=name, at=NOW - timedelta(days=1), by="admin", reason="r", expires_at=expires_at
    )


@pytest.mark.parametrize(
    ("expires_at", "active"),
    [
        (None, True),
        (NOW, False),
        (NOW + MICROSECOND, True),
        (NOW - MICROSECOND, False),
        (NOW + timedelta(days=365), True),
        # the same instant written in another zone is still "now"
        (NOW.astimezone(timezone(timedelta(hours=2))), False),
    ],
)
def test_grant_is_active_only_before_it_expires(expires_at: datetime | None, active: bool) -> None:
    assert grant("vip", expires_at).active(NOW) is active


def test_active_extensions_drops_expired_ones() -> None:
    grants = {
        "forever": grant("forever", None),
        "ends-now": grant("ends-now", NOW),
        "ended": grant("ended", NOW - timedelta(hours=1)),
        "ends-soon": grant("ends-soon", NOW + MICROSECOND),
    }

    active = active_extensions(grants, NOW)

    assert active == {"forever": grants["forever"], "ends-soon": grants["ends-soon"]}
    assert active_extensions(grants, NOW + timedelta(seconds=1)) == {"forever": grants["forever"]}
    assert active_extensions({}, NOW) == {}


def test_expiry_prefers_the_requested_time() -> None:
    definition = ExtensionDefinition(name="trial", description="Trial", default_lifetime_days=30)
    requested = NOW + timedelta(days=3)

    assert definition.expiry(NOW, requested) == requested


def test_expiry_adds_the_default_lifetime() -> None:
    definition = ExtensionDefinition(name="trial", description="Trial", default_lifetime_days=30)

    assert definition.expiry(NOW, None) == datetime(2026, 12, 20, 10, 0, tzinfo=UTC)


def test_expiry_without_default_lifetime_is_none() -> None:
    definition = ExtensionDefinition(name="employee", description="Staff")

    assert definition.expiry(NOW, None) is None
    assert definition.expiry(NOW, NOW + timedelta(days=1)) == NOW + timedelta(days=1)


@pytest.mark.parametrize(
    "name",
    [
        "vip",
        "a",
        "no-reward",
        "frequent-returner",
        "tier2",
        "x-",
        "a" + "b" * 62,
    ],
)
def test_valid_extension_names(name: str) -> None:
    assert check_extension_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "VIP",
        "Vip",
        "2fast",
        "-vip",
        "no_reward",
        "no reward",
        "vip!",
        "vïp",
        "a" + "b" * 63,
        "vip\n",
        " vip",
    ],
)
def test_invalid_extension_names(name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_extension_name(name, field="input.name")

    assert raised.value.field == "input.name"


def test_reason_is_trimmed_and_bounded() -> None:
    assert check_reason("  Joined creator programme \n") == "Joined creator programme"
    assert check_reason("x" * 500) == "x" * 500
    for bad in ("", "   ", "x" * 501):
        with pytest.raises(InvalidInput) as raised:
            check_reason(bad)
        assert raised.value.field == "reason"
