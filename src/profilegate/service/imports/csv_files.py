"""CSV import files as Shopify writes them: a header row, then one record per row.

Rows are read strictly: a quote out of place, or a quoted field the file ends inside (a file cut
short), makes the row an :class:`UnreadableRow` instead of data.
"""

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from profilegate.service.imports.records import WrongFormat
from profilegate.service.imports.text_files import check_text, text_lines

type Row = dict[str, str]

CUT_SHORT = (
    'the file ends inside a quoted field that starts on this row (a " without its closing "): '
    "the file may be cut short"
)
QUOTE_OUT_OF_PLACE = (
    'not valid CSV: a quoted field must close with " right before a comma or the end of the line'
)


@dataclass(frozen=True)
class UnreadableRow:
    """A row that is not valid CSV, with the line it starts on and ``known``: the columns of its
    first line that end before its first quote, which read the same however the row goes on."""

    line: int
    reason: str
    known: Row


class _CountedLines:
    """The file's lines, counting those handed out and noting when there are no more."""

    def __init__(self, path: Path) -> None:
        self._lines = text_lines(path)
        self.count = 0
        self.ended = False
        self.first = ""  # the first line handed out since ``mark``
        self._marked = False

    def mark(self) -> None:
        self.first, self._marked = "", True

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.ended = True
            raise
        self.count += 1
        if self._marked:
            self.first, self._marked = line, False
        return line


def check_header(path: Path, required: tuple[str, ...]) -> list[str]:
    """The header of ``path``; :class:`WrongFormat` naming the expected columns if one is missing."""
    check_text(path)
    try:
        header = next(csv.reader(text_lines(path), strict=True), [])
    except csv.Error:
        raise WrongFormat(str(path), "is not CSV: its header row has a quote out of place") from None
    missing = [name for name in required if name not in header]
    if missing:
        raise WrongFormat(
            str(path),
            f"missing the columns {', '.join(missing)}; expected a header with {', '.join(required)}",
        )
    return header


def csv_rows(path: Path) -> Iterator[tuple[int, Row] | UnreadableRow]:
    """Each data row as column name -> stripped text, with the line number its record ends on;
    a row that is not valid CSV as an :class:`UnreadableRow`."""
    lines = _CountedLines(path)
    reader = csv.DictReader(lines, restval="", strict=True)
    header = reader.fieldnames or []  # read now, so that each row below starts after it
    while True:
        start = lines.count + 1
        lines.mark()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield UnreadableRow(
                start, CUT_SHORT if lines.ended else QUOTE_OUT_OF_PLACE, _known(header, lines.first)
            )
            continue
        yield (
            lines.count,
            {name: (value or "").strip() for name, value in row.items() if name is not None},
        )


def _known(header: Sequence[str], first_line: str) -> Row:
    """The columns of ``first_line`` that end before its first quote."""
    before_quote = first_line.split('"', 1)[0]
    complete = next(csv.reader([before_quote]), [])[:-1]  # the last one runs into the quote
    return {name: value.strip() for name, value in zip(header, complete, strict=False)}
