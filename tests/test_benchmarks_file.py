"""BENCHMARKS.md keeps one current section per benchmark and a summary table of every measured
target (bench/machine.py, bench/summary.py)."""

import re
from pathlib import Path

from bench.machine import (
    SUMMARY,
    SUMMARY_COLUMNS,
    TargetResult,
    anchor,
    heading,
    publish,
    replace_section,
    section_date,
    split_sections,
    targets_of,
    with_summary,
)
from bench.summary import main as summary_main

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
INTRO = "# Benchmarks\n\nEvery figure here was measured by a script under `bench/`.\n"
SHARE = TargetResult("POST /v1/track: share of the floor's events/s", "116%", ">= 30%", True)
STEADY = TargetResult("POST /v1/track: last tenth / first tenth", "53%", ">= 70%", False)
CPU = TargetResult("checkout | known customer", "2.05 ms", "gateway CPU <= 0.6 ms", False)


def ingest(run: str, *targets: TargetResult) -> str:
    lines = "\n".join(target.line() for target in targets)
    return f"## Ingestion: events per second\n\n- Run {run} on a machine.\n\n{lines}\n"


INGEST_OLD = ingest("2026-11-23 17:25 UTC", SHARE, STEADY)
INGEST_AGAIN = ingest("2026-11-23 19:02 UTC", SHARE, STEADY)
INGEST_NEW = ingest("2026-12-04 21:50 UTC", SHARE, TargetResult(STEADY.operation, "72%", ">= 70%", True))
COST = f"## Cost per operation (`bench/cost.py`)\n\n2026-12-04 18:53 UTC, a machine.\n\n{CPU.line()}\n"
COUNTER = "## Feed counter: reservations on one document\n\n- Run 2026-12-04 17:53 UTC on a machine.\n"


def headings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("## ")]


def summary_rows(text: str) -> list[list[str]]:
    """The cells of the summary table's rows, its header first."""
    _, sections = split_sections(text)
    table = [
        line for line in sections[0].splitlines() if line.startswith("|") and not line.startswith("|---")
    ]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in table]


def test_a_duplicated_section_is_replaced_by_one_in_the_place_of_the_first() -> None:
    text = "\n".join([INTRO, INGEST_OLD, COST, INGEST_AGAIN])

    new = replace_section(text, INGEST_NEW)

    assert headings(new) == [
        SUMMARY,
        "## Ingestion: events per second",
        "## Cost per operation (`bench/cost.py`)",
    ]
    assert "21:50 UTC" in new
    assert "17:25 UTC" not in new
    assert "19:02 UTC" not in new
    assert new.startswith(INTRO)
    assert CPU.line() in new  # the other section is kept as it was


def test_a_new_benchmark_is_appended() -> None:
    text = replace_section("\n".join([INTRO, INGEST_OLD]), COST)

    new = replace_section(text, COUNTER)

    assert headings(new)[1:] == [
        "## Ingestion: events per second",
        "## Cost per operation (`bench/cost.py`)",
        "## Feed counter: reservations on one document",
    ]
    assert new.endswith(COUNTER)


def test_the_summary_has_one_row_per_target_with_its_figure_verdict_and_section() -> None:
    text = "\n".join([INTRO, INGEST_OLD, COST, INGEST_AGAIN, COUNTER])

    new = replace_section(replace_section(text, INGEST_NEW), INGEST_NEW)

    preamble, sections = split_sections(new)
    assert preamble.strip() == INTRO.strip()
    assert sections[0].startswith(f"{SUMMARY}\n")
    ingestion = "[Ingestion: events per second](#ingestion-events-per-second)"
    cost = "[Cost per operation (`bench/cost.py`)](#cost-per-operation-benchcostpy)"
    counter = "[Feed counter: reservations on one document](#feed-counter-reservations-on-one-document)"
    assert summary_rows(new) == [
        list(SUMMARY_COLUMNS),
        [SHARE.operation, "116%", ">= 30%", "PASS", "2026-12-04 21:50 UTC", ingestion],
        [STEADY.operation, "72%", ">= 70%", "PASS", "2026-12-04 21:50 UTC", ingestion],
        [
            "checkout \\| known customer",
            "2.05 ms",
            "gateway CPU <= 0.6 ms",
            "FAIL",
            "2026-12-04 18:53 UTC",
            cost,
        ],
        ["-", "-", "no target", "-", "2026-12-04 17:53 UTC", counter],
    ]
    assert new.count(SUMMARY) == 1


def test_a_target_reads_back_as_it_was_written() -> None:
    odd = TargetResult('a --> b, "quoted"', "1 | 2", "<= 3 ms", False)

    assert targets_of(f"## X\n\n{odd.line()}\n{SHARE.line()}\n") == [odd, SHARE]
    assert "-->" not in odd.line().removesuffix(" -->")


def test_publish_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "BENCHMARKS.md"
    target.write_text("\n".join([INTRO, INGEST_OLD, INGEST_AGAIN]), encoding="utf-8")

    publish(INGEST_NEW, target)
    publish(COUNTER, tmp_path / "new.md")

    assert target.read_text(encoding="utf-8") == replace_section("\n".join([INTRO, INGEST_OLD]), INGEST_NEW)
    assert headings((tmp_path / "new.md").read_text(encoding="utf-8")) == [
        SUMMARY,
        "## Feed counter: reservations on one document",
    ]


def test_the_summary_command_rewrites_only_the_summary(tmp_path: Path) -> None:
    target = tmp_path / "BENCHMARKS.md"
    stale = replace_section("\n".join([INTRO, INGEST_OLD]), COST).replace("| 116% |", "| 99% |")
    target.write_text(stale, encoding="utf-8")

    summary_main(["--write", str(target)])

    assert target.read_text(encoding="utf-8") == with_summary(stale)
    assert "| 116% |" in target.read_text(encoding="utf-8")


# -- the committed file ----------------------------------------------------------------------------


def test_the_committed_file_has_one_section_per_benchmark_and_headings_without_dates() -> None:
    _, sections = split_sections(BENCHMARKS.read_text(encoding="utf-8"))
    names = [heading(section) for section in sections]

    assert names[0] == heading(SUMMARY)
    assert len(names) == len(set(names)), [name for name in names if names.count(name) > 1]
    assert not [name for name in names if re.search(r"\d{4}-\d{2}-\d{2}|earlier run", name)]


def test_the_committed_summary_lists_every_target_of_every_section() -> None:
    text = BENCHMARKS.read_text(encoding="utf-8")
    _, sections = split_sections(text)
    rows = summary_rows(text)

    assert rows[0] == list(SUMMARY_COLUMNS)
    expected = []
    for section in sections[1:]:
        link = f"[{heading(section)}](#{anchor(heading(section))})"
        cells = [[t.operation, t.figure, t.target, t.verdict] for t in targets_of(section)]
        expected += [[*row, section_date(section), link] for row in cells or [["-", "-", "no target", "-"]]]
    assert [[cell.replace("\\|", "|") for cell in row] for row in rows[1:]] == expected
    assert with_summary(text) == text, "run: .venv/bin/python -m bench.summary --write BENCHMARKS.md"
