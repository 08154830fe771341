"""NDJSON import files: one event per line, the shape ``POST /v1/track`` accepts.

An event without an ``id`` gets one made from its content (``import-ndjson:`` and a hash of
the line's JSON), so the same line in a later, overlapping file is the same event.
"""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import orjson

from profilegate.service.imports.records import Events, Record, Rejected, WrongFormat
from profilegate.service.imports.text_files import check_text, text_lines

ID_PREFIX = "import-ndjson:"


def check_ndjson(path: Path) -> None:
    """The first non-empty line must be a JSON object, else nothing of the file is imported."""
    check_text(path)
    for line in text_lines(path):
        if line.strip():
            try:
                first = orjson.loads(line)
            except orjson.JSONDecodeError:
                first = None
            if not isinstance(first, dict):
                raise WrongFormat(str(path), "expected NDJSON: one JSON object (a tracking event) per line")
            return


def read_ndjson(path: Path) -> Iterator[Record]:
    for number, line in enumerate(text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            yield Rejected(number, f"not valid JSON: {error}")
            continue
        if not isinstance(event, dict):
            yield Rejected(number, "a line must hold one JSON object, a tracking event")
            continue
        if "id" not in event:
            digest = hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()
            event["id"] = ID_PREFIX + digest[:40]
        yield Events(number, 1, (event,))
