"""Which store the settings describe, and how a database is laid out for it."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from profilegate.domain.free_form import MONGODB_MAX_BYTES, MONGODB_MAX_DEPTH
from profilegate.settings import EMBEDDED_EVENT_SEGMENT, EMBEDDED_PARTITIONS, Settings
from profilegate.storage.layout import Layout, LayoutKind
from profilegate.storage.store import write_concern


def layout_of(settings: Settings) -> tuple[int, int | None]:
    layout = settings.layout
    return layout.partitions, layout.event_segment_size


def test_without_a_uri_the_embedded_store_is_used_and_partitioned() -> None:
    assert layout_of(Settings(mongodb_uri=None)) == (EMBEDDED_PARTITIONS, EMBEDDED_EVENT_SEGMENT)


def test_serve_workers_on_the_embedded_store_lay_it_out_for_it() -> None:
    settings = Settings(mongodb_uri="mongodb://127.0.0.1:1", embedded_store_running=True)
    assert settings.uses_embedded_store
    assert layout_of(settings) == (EMBEDDED_PARTITIONS, EMBEDDED_EVENT_SEGMENT)


def test_a_mongodb_uri_means_one_collection_each() -> None:
    assert layout_of(Settings(mongodb_uri="mongodb://db1:27017/?replicaSet=rs0")) == (1, None)


def test_event_property_limits_come_from_the_settings() -> None:
    settings = Settings(
        event_properties_max_bytes=4096,
        event_properties_max_keys=20,
        event_properties_max_depth=3,
        event_property_key_max_length=16,
        event_property_string_max_length=100,
    )

    limits = settings.event_rules.properties

    assert (limits.max_bytes, limits.max_keys, limits.max_depth) == (4096, 20, 3)
    assert (limits.max_key_length, limits.max_string_length) == (16, 100)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("event_properties_max_depth", MONGODB_MAX_DEPTH // 2 + 1),
        ("event_properties_max_depth", 0),
        ("event_properties_max_bytes", MONGODB_MAX_BYTES // 4 + 1),
        ("event_properties_max_keys", 0),
    ],
)
def test_event_property_limits_near_mongodbs_own_are_refused_naming_the_setting(
    name: str, value: int
) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings.model_validate({name: value})

    assert name in str(refused.value)


def test_the_layout_can_be_asked_for_whatever_the_store() -> None:
    on_mongodb = Settings(mongodb_uri="mongodb://db1:27017/", storage_layout=LayoutKind.EMBEDDED)
    on_embedded = Settings(mongodb_uri=None, storage_layout=LayoutKind.MONGODB)

    assert on_mongodb.layout == Layout.embedded(EMBEDDED_PARTITIONS, EMBEDDED_EVENT_SEGMENT)
    assert on_embedded.layout == Layout()
    assert on_mongodb.store_options["explicit"]
    assert on_embedded.store_options["explicit"]
    assert not Settings(mongodb_uri=None).store_options["explicit"]


def test_partitions_and_segments_are_refused_in_the_mongodb_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://db1:27017/")
    monkeypatch.setenv("PROFILEGATE_STORE_PARTITIONS", "8")

    with pytest.raises(ValidationError, match="PROFILEGATE_STORE_PARTITIONS applies to the embedded layout"):
        Settings()


def test_an_unknown_layout_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFILEGATE_STORAGE_LAYOUT", "sharded")

    with pytest.raises(ValidationError, match="storage_layout"):
        Settings()


@pytest.mark.parametrize(
    ("members", "journal", "sent"),
    [("majority", "true", {"w": "majority", "j": True}), ("1", "false", {"w": 1, "j": False})],
)
def test_the_event_write_concern_is_a_setting(
    members: str, journal: str, sent: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROFILEGATE_EVENT_WRITE_CONCERN", members)
    monkeypatch.setenv("PROFILEGATE_EVENT_WRITE_JOURNAL", journal)

    options = Settings(mongodb_uri=None).store_options

    assert write_concern(options["event_write"], options["event_journal"]).document == sent


def test_an_event_write_concern_that_is_neither_majority_nor_a_count_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROFILEGATE_EVENT_WRITE_CONCERN", "0")

    with pytest.raises(ValidationError, match="event_write_concern"):
        Settings(mongodb_uri=None)


def test_the_shop_days_are_those_of_the_shop_time_zone() -> None:
    default = Settings(mongodb_uri="mongodb://unused")
    berlin = Settings(mongodb_uri="mongodb://unused", shop_time_zone="Europe/Berlin", churn_days=30)

    assert str(default.tracking_rules.shop.zone) == "UTC"
    shop = berlin.tracking_rules.shop
    assert (str(shop.zone), shop.churn_days) == ("Europe/Berlin", 30)


def test_the_session_timeout_is_30_minutes_unless_set_and_at_most_12_hours() -> None:
    default = Settings(mongodb_uri="mongodb://unused").tracking_rules.shop
    set_to_45 = Settings(mongodb_uri="mongodb://unused", session_timeout_minutes=45).tracking_rules.shop

    assert (default.session_timeout, set_to_45.session_timeout) == (
        timedelta(minutes=30),
        timedelta(minutes=45),
    )
    with pytest.raises(ValidationError, match="session_timeout_minutes"):
        Settings(mongodb_uri="mongodb://unused", session_timeout_minutes=721)


def test_an_unknown_shop_time_zone_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(mongodb_uri="mongodb://unused", shop_time_zone="Europe/Atlantis")

    assert "PROFILEGATE_SHOP_TIME_ZONE: 'Europe/Atlantis' is not an IANA time zone" in str(refused.value)


def test_a_silence_too_short_for_the_flushes_is_refused_naming_both_settings() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(mongodb_uri="mongodb://unused", shop_rollup_flush_seconds=30, shop_rollup_silent_seconds=60)

    message = str(refused.value)
    assert "PROFILEGATE_SHOP_ROLLUP_SILENT_SECONDS" in message
    assert "PROFILEGATE_SHOP_ROLLUP_FLUSH_SECONDS" in message
