"""The differences of a consistency check a page at a time, for ``aggregateCheck``.

Differences come sorted (subject, id, metric, both values); a cursor is the last difference of
a page, so the next page starts after it even when the store changed between two calls (each
call runs the whole check again).
"""

import base64
import binascii
import json
from dataclasses import dataclass

from profilegate.domain.errors import InvalidInput
from profilegate.service.aggregate_check import Checked, Difference, Subject

MAX_DIFFERENCES_LISTED = 500
DEFAULT_DIFFERENCES_LISTED = 100


@dataclass(frozen=True)
class PageWanted:
    first: int
    after: Difference | None = None


@dataclass(frozen=True)
class DifferencePage:
    differences: tuple[Difference, ...]
    next_cursor: str | None


def page_wanted(first: int, after: str | None) -> PageWanted:
    """The page asked for, checked before the check runs: ``first`` in range, ``after`` a cursor."""
    if not 1 <= first <= MAX_DIFFERENCES_LISTED:
        raise InvalidInput("first", f"must be between 1 and {MAX_DIFFERENCES_LISTED}")
    return PageWanted(first, None if after is None else decode_cursor(after))


def difference_page(checked: Checked, wanted: PageWanted) -> DifferencePage:
    """The first ``wanted.first`` differences after ``wanted.after`` (from the start without)."""
    rest = checked.differences
    if wanted.after is not None:
        rest = tuple(found for found in rest if found > wanted.after)
    page = rest[: wanted.first]
    return DifferencePage(page, encode_cursor(page[-1]) if len(rest) > wanted.first else None)


def encode_cursor(last: Difference) -> str:
    text = json.dumps([last.subject.value, last.id, last.metric, last.live, last.logged])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Difference:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        subject, id_, metric, live, logged = json.loads(text)
        return Difference(Subject(subject), str(id_), str(metric), str(live), str(logged))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as error:
        raise InvalidInput("after", "is not a cursor aggregateCheck gave out") from error
