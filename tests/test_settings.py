"""Which store the settings describe, and how a database is laid out for it."""

from profilegate.settings import EMBEDDED_EVENT_SEGMENT, EMBEDDED_PARTITIONS, Settings


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
