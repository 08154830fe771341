"""``profilegate import`` as a real process: killed with SIGKILL mid-way and run again, it ends
where one uninterrupted run ends; its summary, rejects file, exit status and refusals as a user
sees them."""

import asyncio
import csv
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from profilegate.storage.documents import Database
from profilegate.storage.layout import LayoutKind
from profilegate.storage.store import Repositories, open_client
from tests.conftest import TEST_LAYOUT, TEST_LAYOUT_KIND, prepare_for_test
from tests.e2e.server import PROFILEGATE, environment, run_cli
from tests.service.imports.files import SHOPIFY_FIXTURES, write_ndjson
from tests.service.raw_events import shopping_batch
from tests.service.test_event_ids import metrics
from tests.service.test_rebuild import all_profiles

SHOPPERS = 60
CHUNK_ROWS = "16"
KILL_WAIT_SECONDS = 120.0


def store_env(store_uri: str, database: str) -> dict[str, str]:
    env = {"MONGODB_URI": store_uri, "PROFILEGATE_DATABASE": database}
    env["PROFILEGATE_STORAGE_LAYOUT"] = TEST_LAYOUT_KIND.value
    if TEST_LAYOUT_KIND is LayoutKind.EMBEDDED:
        env["PROFILEGATE_STORE_PARTITIONS"] = str(TEST_LAYOUT.partitions)
        env["PROFILEGATE_EVENT_SEGMENT_SIZE"] = str(TEST_LAYOUT.event_segment_size)
    return env


@pytest.fixture
async def databases(store_uri: str) -> AsyncIterator[tuple[Database, Database]]:
    names = [f"test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    client = open_client(store_uri)
    try:
        yield client[names[0]], client[names[1]]
        for name in names:
            await client.drop_database(name)
    finally:
        await client.close()


def history(tmp_path: Path) -> Path:
    """The shoppers' events, with a line that is not JSON second and one last: rejected rows in the
    first chunk, done before the kill, and in the last, done after it."""
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    for number in range(SHOPPERS):
        events += shopping_batch(f"shopper{number}@example.com", now - timedelta(days=number), f"k{number}")
    path = write_ndjson(tmp_path / "history.ndjson", events)
    first, rest = path.read_text().split("\n", 1)
    path.write_text(f"{first}\n{{not json\n{rest}[not, an, event]\n")
    return path


def import_args(path: Path, rejects: str) -> list[str]:
    return ["import", str(path), "--format", "ndjson", "--chunk-rows", CHUNK_ROWS, "--rejects", rejects]


async def by_email(repos: Repositories) -> dict[str, dict[str, Any]]:
    return {
        next(i.value for i in p.identities): metrics(p) | {"extensions": sorted(p.extensions)}
        for p in (await all_profiles(repos)).values()
    }


def start_import(path: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PROFILEGATE, *import_args(path, "killed.csv")],
        cwd=cwd,
        env=environment(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


async def kill_mid_way(process: subprocess.Popen[str], database: Database) -> int:
    """SIGKILL the import once a chunk is checkpointed and before the file is done; its records."""
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        checkpoint = await database["import_checkpoints"].find_one({})
        if checkpoint is not None and checkpoint["records"] > 0:
            process.send_signal(signal.SIGKILL)
            process.wait()
            assert not checkpoint["finished"]
            return int(checkpoint["records"])
        await asyncio.sleep(0.01)
    raise AssertionError(f"the import ended ({process.poll()}) before it could be killed mid-way")


async def test_an_import_killed_mid_way_and_run_again_ends_as_one_uninterrupted_run(
    store_uri: str, databases: tuple[Database, Database], tmp_path: Path
) -> None:
    path = history(tmp_path)
    killed_db, whole_db = databases
    process = start_import(path, store_env(store_uri, killed_db.name), tmp_path)
    done_when_killed = await kill_mid_way(process, killed_db)

    # At once: keys the killed run claimed for profiles it never stored are the resumed run's.
    resumed = run_cli(
        *import_args(path, "resumed.csv"), cwd=tmp_path, env=store_env(store_uri, killed_db.name)
    )
    whole = run_cli(*import_args(path, "whole.csv"), cwd=tmp_path, env=store_env(store_uri, whole_db.name))

    assert resumed.returncode == 1, resumed.stderr  # done, with the two rows that are not events
    assert whole.returncode == 1, whole.stderr
    assert "1 file resumed from a checkpoint" in resumed.stderr
    assert summary_counts(resumed.stderr) == summary_counts(whole.stderr)
    # The rejects of the part done before the kill are kept: as if it had never been killed.
    assert (tmp_path / "resumed.csv").read_text() == (tmp_path / "whole.csv").read_text()
    assert [row[1] for row in csv.reader((tmp_path / "whole.csv").read_text().splitlines())] == [
        "line",
        "2",
        str(SHOPPERS * 8 + 2),
    ]
    assert 0 < done_when_killed < SHOPPERS * 8
    killed_repos, whole_repos = await prepare_for_test(killed_db), await prepare_for_test(whole_db)
    assert await by_email(killed_repos) == await by_email(whole_repos)
    assert len(await by_email(whole_repos)) == SHOPPERS
    logged = [len([e async for e in repos.events.scan()]) for repos in (killed_repos, whole_repos)]
    assert logged == [SHOPPERS * 8, SHOPPERS * 8]


SUMMARY = re.compile(
    r"imported 1 file: (?P<rows>\d+) rows read\n"
    r"  (?P<made>\d+) rows made (?P<events>\d+) events: (?P<accepted>\d+) accepted, "
    r"(?P<duplicates>\d+) duplicates, (?P<rejected>\d+) rejected\n"
    r"  (?P<rows_rejected>\d+) rows rejected before becoming events\n"
)


def summary_counts(stderr: str) -> dict[str, int]:
    found = SUMMARY.search(stderr)
    assert found is not None, stderr
    return {name: int(value) for name, value in found.groupdict().items()}


def test_the_summary_adds_up_and_the_rejects_file_next_to_the_input_lists_each_rejection(
    store_uri: str, database_name: str, tmp_path: Path
) -> None:
    orders = Path(shutil.copy(SHOPIFY_FIXTURES / "orders_export.csv", tmp_path / "orders_export.csv"))
    rejects = tmp_path / "orders_export.csv.rejected.csv"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    first = run_cli("import", str(orders), "--format", "shopify-orders-csv", cwd=elsewhere,
                    env=store_env(store_uri, database_name))  # fmt: skip

    assert first.returncode == 1, first.stderr  # done, with rejected rows
    counts = summary_counts(first.stderr)
    # Rows that never became events and events tracking refused, each counted as what they are.
    assert counts["rows"] == counts["made"] + counts["rows_rejected"]
    assert counts["events"] == counts["accepted"] + counts["duplicates"] + counts["rejected"]
    assert counts == {"rows": 32, "made": 26, "events": 22, "accepted": 21, "duplicates": 0, "rejected": 1,
                      "rows_rejected": 6}  # fmt: skip
    assert "  10 profiles created, 0 updated\n" in first.stderr
    assert f"6 rejections listed in {rejects}" in first.stderr
    assert list(elsewhere.iterdir()) == []  # nothing in the current directory
    text = rejects.read_text()
    assert text.endswith("\n")
    header, *rows = list(csv.reader(text.splitlines()))
    assert header == ["file", "line", "reason"]
    assert [int(line) for _, line, _ in rows] == [14, 17, 20, 21, 23, 28]
    assert {path for path, _, _ in rows} == {str(orders)}
    reasons = {int(line): reason for _, line, reason in rows}
    assert reasons[17] == (
        "order #1011: Currency: USD is not the base currency EUR and no rate is configured for it"
    )
    assert reasons[21] == "order #1014: Lineitem quantity: -1 is not a positive quantity"


def test_a_reimport_says_the_file_was_imported_already_and_does_nothing(
    store_uri: str, database_name: str, tmp_path: Path
) -> None:
    orders = Path(shutil.copy(SHOPIFY_FIXTURES / "orders_export.csv", tmp_path / "orders_export.csv"))
    rejects = tmp_path / "orders_export.csv.rejected.csv"
    args = ["import", str(orders), "--format", "shopify-orders-csv"]
    env = store_env(store_uri, database_name)
    run_cli(*args, cwd=tmp_path, env=env)
    listed = rejects.read_text()

    again = run_cli(*args, cwd=tmp_path, env=env)

    assert again.returncode == 0, again.stderr
    lines = again.stderr.splitlines()
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    assert re.fullmatch(
        rf"{re.escape(str(orders))} was imported already by the run of {when}: nothing done now; "
        r"that run read 32 rows",
        lines[0],
    ), again.stderr
    assert lines[1:4] == [
        "  26 rows made 22 events: 21 accepted, 0 duplicates, 1 rejected",
        "  6 rows rejected before becoming events",
        "  10 profiles created, 0 updated",
    ]
    assert not any(line.startswith("imported") for line in lines)  # no summary of work not done
    assert rejects.read_text() == listed


def test_each_run_writes_its_rejects_file_anew(store_uri: str, database_name: str, tmp_path: Path) -> None:
    orders = Path(shutil.copy(SHOPIFY_FIXTURES / "orders_export.csv", tmp_path / "orders_export.csv"))
    rejects = tmp_path / "orders_export.csv.rejected.csv"
    args = ["import", str(orders), "--format", "shopify-orders-csv", "--dry-run"]
    env = store_env(store_uri, database_name)

    checked = [run_cli(*args, cwd=tmp_path, env=env) for _ in range(2)]
    listed = rejects.read_text()
    orders.write_text(
        "\n".join(orders.read_text().splitlines()[:12]) + "\n"
    )  # the rows before the first bad one
    clean = run_cli(*args, cwd=tmp_path, env=env)

    assert [run.returncode for run in checked] == [1, 1]
    assert len(listed.splitlines()) == 1 + 6  # the header and each rejection once, not twice
    assert clean.returncode == 0, clean.stderr
    assert not rejects.exists()  # no rejects file left from an earlier run


def test_the_exit_status_is_documented_in_the_help(tmp_path: Path) -> None:
    shown = run_cli("import", "--help", cwd=tmp_path)

    text = " ".join(shown.stdout.split())
    assert "Exit status: 0 every row imported; 1 done, with rejected rows" in text, shown.stdout
    assert "2 a usage error" in text
    assert "--rejects" in text


def test_a_file_in_the_wrong_format_is_refused_naming_the_expected_columns(
    store_uri: str, database_name: str, tmp_path: Path
) -> None:
    customers = SHOPIFY_FIXTURES / "customers_export.csv"
    args = ["import", str(customers), "--format", "shopify-orders-csv"]

    refused = run_cli(*args, cwd=tmp_path, env=store_env(store_uri, database_name))

    assert refused.returncode == 2
    assert "missing the columns Name, Financial Status" in refused.stderr
    assert "expected a header with Name, Email, Financial Status, Paid at" in refused.stderr
