"""What a reader makes of the rows of an import file, each with the line it came from."""

from dataclasses import dataclass
from typing import Any

from profilegate.service.profiles import ProfileChange

type RawEvent = dict[str, Any]


@dataclass(frozen=True)
class Events:
    """Raw tracking events (the shape ``POST /v1/track`` takes) made from the rows ending at ``line``.

    ``columns``: the file's column each event field came from, for a rejection's reason (the
    first that names the field, or what holds it, wins; an index such as ``items[1]`` is matched
    as ``items[]``); ``label``: what the rows are in the file's words (``order #1001``).
    """

    line: int
    rows: int
    events: tuple[RawEvent, ...]
    columns: tuple[tuple[str, str], ...] = ()
    label: str = ""


@dataclass(frozen=True)
class Customer:
    """A customer row: the profile change it asks for and the extensions its tags map to."""

    line: int
    change: ProfileChange
    extensions: tuple[tuple[str, str], ...]  # (extension, the tag it came from)
    rows: int = 1


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    rows: int = 1


type Record = Events | Customer | Rejected


class WrongFormat(Exception):
    """The file is not in the format asked for; nothing of it was written."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
