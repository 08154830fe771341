"""CSV import files as Shopify writes them: a header row, then one record per row."""

import csv
from collections.abc import Iterator
from pathlib import Path

from profilegate.service.imports.records import WrongFormat
from profilegate.service.imports.text_files import check_text, text_lines

type Row = dict[str, str]


def check_header(path: Path, required: tuple[str, ...]) -> list[str]:
    """The header of ``path``; :class:`WrongFormat` naming the expected columns if one is missing."""
    check_text(path)
    try:
        header = next(csv.reader(text_lines(path)), [])
    except csv.Error as error:
        raise WrongFormat(str(path), f"is not CSV ({error})") from None
    missing = [name for name in required if name not in header]
    if missing:
        raise WrongFormat(
            str(path),
            f"missing the columns {', '.join(missing)}; expected a header with {', '.join(required)}",
        )
    return header


def csv_rows(path: Path) -> Iterator[tuple[int, Row]]:
    """Each data row as column name -> stripped text, with the line number its record ends on."""
    reader = csv.DictReader(text_lines(path), restval="")
    for row in reader:
        yield (
            reader.line_num,
            {name: (value or "").strip() for name, value in row.items() if name is not None},
        )
