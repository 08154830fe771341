"""BENCHMARKS.md keeps one current section per benchmark and a summary table (bench/machine.py)."""

from pathlib import Path

from bench.machine import benchmark_key, publish, replace_section, split_sections, verdicts

INTRO = "# Benchmarks\n\nEvery figure here was measured by a script under `bench/`.\n"

INGEST_OLD = """## Ingestion: events per second

- Run 2026-11-23 17:25 UTC on a machine.

Targets (share of the floor; last tenth against the first):

- share of the floor: **PASS**, 116%.
- last tenth / first tenth: **FAIL**, 53%.
"""

COST = """## Cost per operation (`bench/cost.py`)

2026-12-04 18:53 UTC, a machine. Command: `bench.cost`.

Targets (MongoDB layout):

| target | measured | verdict |
|---|---:|---|
| checkout: <= 1 store commands | 2.05 | FAIL |
| guest: <= 1 store commands | 1.00 | PASS |
| one event: <= 5 store commands | 9.08 | FAIL |

Reading this run: **CPU targets: FAIL** on all three.
"""

INGEST_AGAIN = INGEST_OLD.replace("17:25", "19:02")

INGEST_NEW = """## Ingestion: events per second

- Run 2026-12-04 21:50 UTC on a machine.

Targets (share of the floor; last tenth against the first):

- share of the floor: **PASS**, 101%.
- last tenth / first tenth: **PASS**, 72%.
"""

COUNTER = """## Feed counter: reservations on one document

- Run 2026-12-04 17:53 UTC on a machine.

| clients | reservations/s |
|---:|---:|
| 1 | 137 |
"""


def headings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("## ")]


def test_a_duplicated_section_is_replaced_by_one_in_the_place_of_the_first() -> None:
    text = "\n".join([INTRO, INGEST_OLD, COST, INGEST_AGAIN])

    new = replace_section(text, INGEST_NEW)

    assert headings(new) == [
        "## Summary",
        "## Ingestion: events per second",
        "## Cost per operation (`bench/cost.py`)",
    ]
    assert "21:50 UTC" in new
    assert "17:25 UTC" not in new
    assert "19:02 UTC" not in new
    assert new.startswith(INTRO)
    assert "| 2.05 | FAIL |" in new  # the other section is kept as it was


def test_a_new_benchmark_is_appended() -> None:
    text = replace_section("\n".join([INTRO, INGEST_OLD]), COST)

    new = replace_section(text, COUNTER)

    assert headings(new)[1:] == [
        "## Ingestion: events per second",
        "## Cost per operation (`bench/cost.py`)",
        "## Feed counter: reservations on one document",
    ]
    assert new.endswith(COUNTER)


def test_the_summary_follows_the_introduction_and_lists_each_section_once() -> None:
    text = "\n".join([INTRO, INGEST_OLD, COST, INGEST_AGAIN, COUNTER])

    new = replace_section(replace_section(text, INGEST_NEW), INGEST_NEW)

    preamble, sections = split_sections(new)
    assert preamble.strip() == INTRO.strip()
    assert sections[0].startswith("## Summary\n")
    rows = [line for line in sections[0].splitlines() if line.startswith("| [")]
    assert rows == [
        "| [Ingestion: events per second](#ingestion-events-per-second) | 2026-12-04 21:50 UTC "
        "| 2 PASS, 0 FAIL |",
        "| [Cost per operation (`bench/cost.py`)](#cost-per-operation-benchcostpy) | 2026-12-04 18:53 UTC "
        "| 1 PASS, 2 FAIL |",
        "| [Feed counter: reservations on one document](#feed-counter-reservations-on-one-document) "
        "| 2026-12-04 17:53 UTC | no PASS/FAIL verdicts |",
    ]
    assert new.count("## Summary") == 1


def test_verdicts_come_from_the_targets_not_from_the_reading() -> None:
    assert verdicts(COST) == "1 PASS, 2 FAIL"
    assert verdicts(INGEST_OLD) == "1 PASS, 1 FAIL"
    assert verdicts("## Metrics\n\nTarget: one command whatever the size: **PASS**\n(1 and 1).\n") == (
        "1 PASS, 0 FAIL"
    )
    # without a "Target" paragraph, the PASS and FAIL cells of its tables
    table = "| layout | >= 10x | <= 0.2 |\n|---|---|---|\n| mongodb | FAIL | PASS |\n"
    assert verdicts(f"## Import\n\n{table}") == "1 PASS, 1 FAIL"


def test_a_trailing_date_or_earlier_run_names_the_same_benchmark() -> None:
    assert benchmark_key("## Import: `profilegate import` (2026-12-04)\n") == "Import: `profilegate import`"
    assert benchmark_key("## Checkout: the loyalty query (earlier run)\n") == "Checkout: the loyalty query"
    assert benchmark_key(COST) == "Cost per operation (`bench/cost.py`)"
    old = "\n".join([INTRO, "## Import: `x` (2026-12-03)\n\nold\n", COUNTER])

    new = replace_section(old, "## Import: `x` (2026-12-04)\n\nnew\n")

    assert headings(new)[1:] == [
        "## Import: `x` (2026-12-04)",
        "## Feed counter: reservations on one document",
    ]
    assert "old" not in new


def test_publish_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "BENCHMARKS.md"
    target.write_text("\n".join([INTRO, INGEST_OLD, INGEST_AGAIN]), encoding="utf-8")

    publish(INGEST_NEW, target)
    publish(COUNTER, tmp_path / "new.md")

    assert target.read_text(encoding="utf-8") == replace_section("\n".join([INTRO, INGEST_OLD]), INGEST_NEW)
    assert headings((tmp_path / "new.md").read_text(encoding="utf-8")) == [
        "## Summary",
        "## Feed counter: reservations on one document",
    ]
