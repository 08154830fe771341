"""What the benchmarks that drive a real gateway say about the machine and software they ran on."""

import contextlib
import json
import os
import platform
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path


def load_average() -> str:
    """The one-minute load average, where the system has one."""
    with contextlib.suppress(OSError, AttributeError):
        return f"{os.getloadavg()[0]:.1f}"
    return "unknown"


def cpu_model() -> str:
    """The processor's name where the system tells it, else its architecture."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> str:
    """The platform, the processor and the number of CPUs."""
    return f"{platform.platform()} ({cpu_model()}), {os.cpu_count()} CPUs"


def gateway_versions() -> str:
    """Python and the versions of the packages a gateway's speed depends on."""
    return (
        f"Python {platform.python_version()}, mongoeco {version('mongoeco')}, pymongo {version('pymongo')}, "
        f"uvicorn {version('uvicorn')}, strawberry-graphql {version('strawberry-graphql')}"
    )


SUMMARY = "## Summary"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2} UTC)?")
# One measured target, as a section carries it for the summary (``TargetResult.line``).
_TARGET = re.compile(r"^<!-- target (\{.*\}) -->$", flags=re.MULTILINE)
SUMMARY_COLUMNS = ("operation", "figure", "target", "verdict", "date", "benchmark")


@dataclass(frozen=True)
class TargetResult:
    """One measured target of a benchmark: what was measured, its figure, the target, and whether it
    was met."""

    operation: str
    figure: str
    target: str
    met: bool

    @property
    def verdict(self) -> str:
        return "PASS" if self.met else "FAIL"

    def line(self) -> str:
        """The target as its section carries it for the summary: a Markdown comment holding JSON."""
        fields = {"operation": self.operation, "figure": self.figure, "target": self.target}
        held = json.dumps({**fields, "verdict": self.verdict}, ensure_ascii=False)
        return f"<!-- target {held.replace('-->', '--\\u003e')} -->"


def target_lines(targets: Iterable[TargetResult]) -> list[str]:
    """The lines a section carries its targets in, one each (``targets_of`` reads them back)."""
    return [target.line() for target in targets]


def targets_of(section: str) -> list[TargetResult]:
    """The targets a section carries (``TargetResult.line``), in their order."""
    found = []
    for match in _TARGET.finditer(section):
        held = json.loads(match.group(1))
        verdict = held["verdict"]
        if verdict not in ("PASS", "FAIL"):
            raise ValueError(f"a target's verdict is PASS or FAIL, not {verdict!r}: {match.group(0)}")
        found.append(TargetResult(held["operation"], held["figure"], held["target"], verdict == "PASS"))
    return found


def split_sections(text: str) -> tuple[str, list[str]]:
    """The text before the first ``## `` heading, and each section from its heading to the next one."""
    preamble, *sections = re.split(r"^(?=## )", text, flags=re.MULTILINE)
    return preamble, sections


def heading(section: str) -> str:
    """A section's heading, without the ``## ``: what names its benchmark, so it carries no date."""
    return section.split("\n", 1)[0].removeprefix("## ").strip()


def section_date(section: str) -> str:
    """The first date (``YYYY-MM-DD``, with ``HH:MM UTC`` where given) the section names, else ``-``."""
    found = _DATE.search(section)
    return found.group(0) if found else "-"


def anchor(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def summary_rows(section: str) -> list[str]:
    """The summary's rows of one section: one per target it carries, or one saying it has none."""
    title = heading(section)
    link = f"[{_cell(title)}](#{anchor(title)})"
    date = section_date(section)
    targets = targets_of(section)
    if not targets:
        return [f"| - | - | no target | - | {date} | {link} |"]
    cells = [(_cell(t.operation), _cell(t.figure), _cell(t.target), t.verdict) for t in targets]
    return [f"| {' | '.join(row)} | {date} | {link} |" for row in cells]


def summary(sections: list[str]) -> str:
    """The ``## Summary`` table: one row per measured target of every section, with the date of its
    section and a link to it."""
    rows = [row for section in sections for row in summary_rows(section)]
    return "\n".join(
        [
            SUMMARY,
            "",
            "One row per measured target, from the current section of each benchmark (its date,",
            "linked); a benchmark without targets has one row saying so. Rebuilt from the sections by",
            "every benchmark's `--write` and by `.venv/bin/python -m bench.summary --write BENCHMARKS.md`.",
            "",
            "| " + " | ".join(SUMMARY_COLUMNS) + " |",
            "|" + "---|" * len(SUMMARY_COLUMNS),
            *rows,
        ]
    )


def with_summary(text: str) -> str:
    """The benchmarks file ``text`` with its ``## Summary`` table written again from its sections,
    after the text before the first section (the file's title and introduction)."""
    preamble, sections = split_sections(text)
    sections = [part for part in sections if heading(part) != heading(SUMMARY)]
    parts = [part.strip() for part in (preamble, summary(sections), *sections) if part.strip()]
    return "\n\n".join(parts) + "\n"


def replace_section(text: str, section: str) -> str:
    """The benchmarks file ``text`` with ``section`` in place of its benchmark's section, and its summary.

    The section takes the place of the section with the same heading (a benchmark's heading carries no
    date), or is appended when there is none; other sections of the same heading are dropped. The
    ``## Summary`` table is written again (``with_summary``).
    """
    preamble, sections = split_sections(text)
    same = [index for index, part in enumerate(sections) if heading(part) == heading(section)]
    if same:
        sections[same[0]] = section
        sections = [part for index, part in enumerate(sections) if index not in same[1:]]
    else:
        sections.append(section)
    return with_summary(preamble + "".join(part.rstrip("\n") + "\n\n" for part in sections))


def publish(section: str, write: Path | None) -> None:
    """A benchmark's Markdown section to standard output and, with ``--write``, into that file.

    The file's section of the same benchmark is replaced where it stands (or the section appended), and
    its summary table written again (``replace_section``).
    """
    sys.stdout.write(section)
    if write is not None:
        text = write.read_text(encoding="utf-8") if write.exists() else ""
        write.write_text(replace_section(text, section), encoding="utf-8")
