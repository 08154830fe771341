"""What the benchmarks that drive a real gateway say about the machine and software they ran on."""

import contextlib
import os
import platform
import re
import sys
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
# A heading's trailing date or "(earlier run)" does not make it another benchmark.
_SUFFIX = re.compile(r"\s*\((?:\d{4}-\d{2}-\d{2}|earlier run)\)$")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2} UTC)?")
_VERDICT = re.compile(r"\b(PASS|FAIL)\b")


def split_sections(text: str) -> tuple[str, list[str]]:
    """The text before the first ``## `` heading, and each section from its heading to the next one."""
    preamble, *sections = re.split(r"^(?=## )", text, flags=re.MULTILINE)
    return preamble, sections


def heading(section: str) -> str:
    """A section's heading, without the ``## ``."""
    return section.split("\n", 1)[0].removeprefix("## ").strip()


def benchmark_key(section: str) -> str:
    """What identifies a section's benchmark: its heading, less a trailing date or "(earlier run)"."""
    return _SUFFIX.sub("", heading(section))


def section_date(section: str) -> str:
    """The first date (``YYYY-MM-DD``, with ``HH:MM UTC`` where given) the section names, else ``-``."""
    found = _DATE.search(section)
    return found.group(0) if found else "-"


def verdicts(section: str) -> str:
    """PASS and FAIL counted in the section's targets, e.g. ``7 PASS, 4 FAIL``.

    The targets are the paragraph that starts with "Target" (with the paragraph after it when it ends
    with a colon, the table or list of verdicts); without one, the PASS and FAIL cells of its tables.
    """
    paragraphs = [part.strip() for part in re.split(r"\n[ \t]*\n", section)]
    found = ""
    for index, paragraph in enumerate(paragraphs):
        if re.match(r"Targets?\b", paragraph):
            found = paragraph
            if paragraph.endswith(":") and index + 1 < len(paragraphs):
                found += "\n" + paragraphs[index + 1]
            break
    else:
        found = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    words = _VERDICT.findall(found)
    if not words:
        return "no PASS/FAIL verdicts"
    return f"{words.count('PASS')} PASS, {words.count('FAIL')} FAIL"


def anchor(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def summary(sections: list[str]) -> str:
    """The ``## Summary`` table: one row per section, linked, with its date and its verdicts."""
    rows = []
    for section in sections:
        title = heading(section)
        link = f"[{title.replace('|', '/')}](#{anchor(title)})"
        rows.append(f"| {link} | {section_date(section)} | {verdicts(section)} |")
    return "\n".join(
        [
            SUMMARY,
            "",
            "One row per benchmark: the date of its current section and the verdicts of its targets.",
            "",
            "| benchmark | date | targets |",
            "|---|---|---|",
            *rows,
        ]
    )


def replace_section(text: str, section: str) -> str:
    """The benchmarks file ``text`` with ``section`` in place of its benchmark's section(s), and its summary.

    The section takes the place of the first section of the same benchmark (``benchmark_key``), others
    of it are dropped, and it is appended when there is none. The ``## Summary`` table is written again
    after the text before the first section (the file's title and introduction).
    """
    preamble, sections = split_sections(text)
    sections = [part for part in sections if heading(part) != heading(SUMMARY)]
    key = benchmark_key(section)
    same = [index for index, part in enumerate(sections) if benchmark_key(part) == key]
    if same:
        sections[same[0]] = section
        sections = [part for index, part in enumerate(sections) if index not in same[1:]]
    else:
        sections.append(section)
    parts = [part.strip() for part in (preamble, summary(sections), *sections) if part.strip()]
    return "\n\n".join(parts) + "\n"


def publish(section: str, write: Path | None) -> None:
    """A benchmark's Markdown section to standard output and, with ``--write``, into that file.

    The file's section of the same benchmark is replaced where it stands (or the section appended), and
    its summary table written again (``replace_section``).
    """
    sys.stdout.write(section)
    if write is not None:
        text = write.read_text(encoding="utf-8") if write.exists() else ""
        write.write_text(replace_section(text, section), encoding="utf-8")
