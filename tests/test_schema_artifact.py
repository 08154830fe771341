"""The committed ``schema.graphql`` is the schema the code builds."""

from pathlib import Path

from profilegate.api.schema import schema_sdl

COMMITTED_SCHEMA = Path(__file__).resolve().parents[1] / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    assert COMMITTED_SCHEMA.read_text() == schema_sdl(), (
        "schema.graphql is out of date with the code: run `profilegate export-schema` and commit the result"
    )
