"""Every GraphQL example in the README and the docs is valid against the schema; the Python one compiles."""

from pathlib import Path

import pytest
from graphql import parse, validate

from profilegate.api.schema import build_schema
from tests.examples import fenced

ROOT = Path(__file__).parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(language: str) -> list[tuple[str, str]]:
    return [found for path in DOCUMENTS for found in fenced(path, language)]


@pytest.mark.parametrize(("where", "document"), blocks("graphql"))
def test_a_graphql_example_is_valid_against_the_schema(where: str, document: str) -> None:
    errors = validate(build_schema()._schema, parse(document))
    assert not errors, f"{where}: {[error.message for error in errors]}"


@pytest.mark.parametrize(("where", "source"), blocks("python"))
def test_a_python_example_compiles(where: str, source: str) -> None:
    compile(source, where, "exec")
