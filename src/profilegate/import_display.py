"""What ``profilegate import`` shows: progress, the rejected rows' report and the summary."""

import contextlib
import csv
import time
from collections.abc import Callable, Iterator
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

from profilegate.service.imports import ImportProgress, ImportSummary, RejectedRow

PLAIN_PROGRESS_SECONDS = 10.0  # how often a progress line is printed when not on a terminal
REPORT_COLUMNS = ("file", "line", "reason")


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
    started = last = time.monotonic()
    first_rows: dict[str, int] = {}

    def show(progress: ImportProgress) -> None:
        nonlocal last
        now = time.monotonic()
        first_rows.setdefault(progress.path, progress.rows)
        if now - last < PLAIN_PROGRESS_SECONDS and progress.rows < progress.total_rows:
            return
        last = now
        rate = (progress.rows - first_rows[progress.path]) / max(now - started, 1e-9)
        console.print(
            f"{progress.path}: {progress.rows}/{progress.total_rows} rows, {rate:.0f} rows/s", highlight=False
        )

    return show


class RejectionReport:
    """The rejected rows, appended to a CSV file that is opened only when one is rejected."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._stream: TextIO | None = None
        self._writer: Any = None  # csv.writer's type is private to typeshed

    def write(self, row: RejectedRow) -> None:
        if self._writer is None:
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            self._stream = self.path.open("a", encoding="utf-8", newline="")
            self._writer = csv.writer(self._stream)
            if fresh:
                self._writer.writerow(REPORT_COLUMNS)
        self._writer.writerow((row.path, row.line, row.reason))
        self.count += 1

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


@contextlib.contextmanager
def rejection_report(path: Path) -> Iterator[RejectionReport]:
    report = RejectionReport(path)
    try:
        yield report
    finally:
        report.close()


def import_summary(summary: ImportSummary, report: Path | None, *, dry_run: bool) -> str:
    counts = summary.counts
    lines = [
        f"{'checked' if dry_run else 'imported'} {summary.files} files: {counts.rows} rows read, "
        f"{counts.events} events ({counts.accepted} {'valid' if dry_run else 'accepted'}, "
        f"{counts.duplicates} duplicates, {counts.rejected} rejected); "
        f"{counts.profiles_created} profiles created, {counts.profiles_updated} updated",
    ]
    if summary.resumed:
        lines.append(f"{summary.resumed} files resumed from their checkpoint")
    if summary.already_done:
        lines.append(f"{summary.already_done} files were imported before: nothing done again")
    if report is not None:
        lines.append(f"rejected rows are listed in {report}")
    return "\n".join(lines)
