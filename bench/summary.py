"""Rebuild the ``## Summary`` table of BENCHMARKS.md from its sections, without running a benchmark.

    .venv/bin/python -m bench.summary --write BENCHMARKS.md   # rewrite the file's summary
    .venv/bin/python -m bench.summary BENCHMARKS.md           # print the summary it would get

Each benchmark's ``--write`` rebuilds it too; this is for a section edited by hand.
"""

import argparse
import sys
from pathlib import Path

from bench.machine import SUMMARY, heading, split_sections, summary, with_summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", nargs="?", type=Path, help="the benchmarks file to read (default: --write)")
    parser.add_argument("--write", type=Path, help="rewrite this file's summary table in place")
    options = parser.parse_args(argv)
    source = options.file or options.write
    if source is None:
        parser.error("name the benchmarks file, or --write it")
    text = source.read_text(encoding="utf-8")
    if options.write is None:
        _, sections = split_sections(text)
        sys.stdout.write(summary([part for part in sections if heading(part) != heading(SUMMARY)]) + "\n")
        return
    options.write.write_text(with_summary(text), encoding="utf-8")


if __name__ == "__main__":
    main()
