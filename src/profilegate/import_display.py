"""What ``profilegate import`` shows: progress, the rejects files and the summary."""

import contextlib
import csv
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from profilegate.domain.imports import ImportCounts
from profilegate.service.imports import FileState, ImportProgress, ImportSummary, RejectedRow

PLAIN_PROGRESS_SECONDS = 10.0  # how often a progress line is printed when not on a terminal
REPORT_COLUMNS = ("file", "line", "reason")
REJECTS_SUFFIX = ".rejected.csv"


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text("" if task.speed is None else f"{task.speed:,.0f} rows/s")


@contextlib.contextmanager
def import_progress(console: Console) -> Iterator[Callable[[ImportProgress], None]]:
    """A bar per file with rows/s and ETA on a terminal; else a line every few seconds."""
    if not console.is_terminal:
        yield _plain_lines(console)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def show(progress: ImportProgress) -> None:
            if progress.path not in tasks:
                tasks[progress.path] = bar.add_task(Path(progress.path).name, total=progress.total_rows)
            bar.update(tasks[progress.path], completed=progress.rows, total=progress.total_rows)

        yield show


def _plain_lines(console: Console) -> Callable[[ImportProgress], None]:
    last = time.monotonic()
    began: dict[str, tuple[float, int]] = {}  # per file: when this run began it, at which row
    ended: set[str] = set()  # files whose last line was printed

    def show(progress: ImportProgress) -> None:
        nonlocal last
        now = time.monotonic()
        started, first_rows = began.setdefault(progress.path, (now, progress.rows))
        at_end = progress.rows >= progress.total_rows
        if progress.path in ended or (now - last < PLAIN_PROGRESS_SECONDS and not at_end):
            return
        if at_end:
            ended.add(progress.path)
        last = now
        rate = (progress.rows - first_rows) / max(now - started, 1e-9)
        console.print(
            f"{progress.path}: {progress.rows}/{progress.total_rows} rows, {rate:.0f} rows/s", highlight=False
        )

    return show


class RejectsFiles:
    """The rejected rows of a run as CSV (file, line, reason), in line order: one file next to each
    input (``<input>.rejected.csv``), or all of them in the one file ``--rejects`` names. A run
    that imports an input writes its rejects file anew: opened at its first rejected row, or, when
    the run rejected none, an older one is removed, so the file never describes another run."""

    def __init__(self, chosen: Path | None) -> None:
        self.chosen = chosen
        self.written: dict[Path, int] = {}
        self._streams: dict[Path, TextIO] = {}
        self._writers: dict[Path, Any] = {}  # csv.writer's type is private to typeshed

    def target(self, input_path: str) -> Path:
        if self.chosen is not None:
            return self.chosen
        source = Path(input_path)
        return source.with_name(source.name + REJECTS_SUFFIX)

    def write(self, row: RejectedRow) -> None:
        target = self.target(row.path)
        if target not in self._writers:
            self._streams[target] = target.open("w", encoding="utf-8", newline="")
            self._writers[target] = csv.writer(self._streams[target], lineterminator="\n")
            self._writers[target].writerow(REPORT_COLUMNS)
            self.written[target] = 0
        self._writers[target].writerow((row.path, row.line, row.reason))
        self.written[target] += 1

    def remove_stale(self, summary: ImportSummary) -> None:
        """Remove the rejects file of each input this run imported without rejecting a row."""
        for result in summary.files:
            target = self.target(result.path)
            if result.state is not FileState.DONE_BEFORE and target not in self.written:
                target.unlink(missing_ok=True)

    def close(self) -> None:
        for stream in self._streams.values():
            stream.close()


@contextlib.contextmanager
def rejects_files(chosen: Path | None) -> Iterator[RejectsFiles]:
    files = RejectsFiles(chosen)
    try:
        yield files
    finally:
        files.close()


def import_summary(summary: ImportSummary, rejects: dict[Path, int], *, dry_run: bool) -> str:
    """What the run did, its parts adding up to its wholes; then the files done before, each with
    what it was counted then; then where the rejected rows are listed."""
    lines: list[str] = []
    imported = len(summary.files) - len(summary.done_before)
    if imported:
        done = "checked" if dry_run else "imported"
        lines.append(f"{done} {_files(imported)}: {_many(summary.counts.rows, 'row')} read")
        lines += [f"  {line}" for line in count_lines(summary.counts, dry_run=dry_run)]
    resumed = summary.count(FileState.RESUMED)
    if resumed:
        lines.append(
            f"{_files(resumed)} resumed from a checkpoint: the counts include the part imported "
            "before the interruption"
        )
    for result in summary.done_before:
        lines.append(
            f"{result.path} was imported already {_when(result.finished_at)}: nothing done now; "
            f"that run read {_many(result.counts.rows, 'row')}"
        )
        lines += [f"  {line}" for line in count_lines(result.counts, dry_run=False)]
    for target, count in rejects.items():
        lines.append(f"{_many(count, 'rejection')} listed in {target}")
    return "\n".join(lines)


def count_lines(counts: ImportCounts, *, dry_run: bool) -> list[str]:
    """Rows read = rows that made events + customer rows applied + rows rejected whole; events =
    accepted + duplicates + rejected."""
    lines = []
    if counts.customers:
        lines.append(f"{_many(counts.customers, 'customer row')} applied to profiles")
        lines.append(f"{_many(counts.rows_rejected, 'row')} rejected before changing a profile")
    if counts.rows_to_events or counts.events or not counts.customers:
        lines.append(
            f"{_many(counts.rows_to_events, 'row')} made {_many(counts.events, 'event')}: "
            f"{counts.accepted} {'valid' if dry_run else 'accepted'}, "
            f"{_many(counts.duplicates, 'duplicate')}, {counts.rejected} rejected"
        )
        if not counts.customers:
            lines.append(f"{_many(counts.rows_rejected, 'row')} rejected before becoming events")
    if not dry_run:
        created = _many(counts.profiles_created, "profile")
        lines.append(f"{created} created, {counts.profiles_updated} updated")
    return lines


def _files(count: int) -> str:
    return _many(count, "file")


def _many(count: int, noun: str) -> str:
    """``1 row``, ``2 rows``, ``0 rows``."""
    return f"{count} {noun if count == 1 else noun + 's'}"


def _when(finished_at: datetime | None) -> str:
    if finished_at is None:
        return "by an earlier run"
    return f"by the run of {finished_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
