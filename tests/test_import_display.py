"""The import summary's wording: counts of one are singular, the parts add up."""

import io

from rich.console import Console

from profilegate.domain.imports import ImportCounts
from profilegate.import_display import count_lines, import_progress
from profilegate.service.imports import ImportProgress


def test_a_count_of_one_reads_in_the_singular() -> None:
    counts = ImportCounts(rows=1, events=1, accepted=1, profiles_created=1)

    assert count_lines(counts, dry_run=False) == [
        "1 row made 1 event: 1 accepted, 0 duplicates, 0 rejected",
        "0 rows rejected before becoming events",
        "1 profile created, 0 updated",
    ]


def test_customer_rows_read_in_the_plural_and_the_singular() -> None:
    counts = ImportCounts(rows=3, customers=2, rows_rejected=1, profiles_created=2)

    assert count_lines(counts, dry_run=False) == [
        "2 customer rows applied to profiles",
        "1 row rejected before changing a profile",
        "2 profiles created, 0 updated",
    ]


def test_off_a_terminal_a_files_last_progress_line_is_printed_once() -> None:
    printed = io.StringIO()
    with import_progress(Console(file=printed, width=200)) as show:
        show(ImportProgress("events.ndjson", rows=0, total_rows=3))
        show(ImportProgress("events.ndjson", rows=3, total_rows=3))  # the last chunk
        show(ImportProgress("events.ndjson", rows=3, total_rows=3))  # the file is done

    lines = printed.getvalue().splitlines()
    assert [line.split(", ")[0] for line in lines] == ["events.ndjson: 3/3 rows"]
