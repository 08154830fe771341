"""Which store the settings describe, and how a database is laid out for it."""

import pytest
from pydantic import ValidationError

from profilegate.domain.free_form import MONGODB_MAX_BYTES, MONGODB_MAX_DEPTH
from profilegate.settings import EMBEDDED_EVENT_SEGMENT, EMBEDDED_PARTITIONS, Settings


def layout_of(settings: Settings) -> tuple[int, int | None]:
    layout = settings.layout(embedded=settings.uses_embedded_store)
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
