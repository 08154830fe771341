"""``profilegate import`` as a real process: killed with SIGKILL mid-way and run again, it ends
where one uninterrupted run ends; its summary, report file and refusals as a user sees them."""

import asyncio
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
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    for number in range(SHOPPERS):
        events += shopping_batch(f"shopper{number}@example.com", now - timedelta(days=number), f"k{number}")
    return write_ndjson(tmp_path / "history.ndjson", events)


def import_args(path: Path) -> list[str]:
    return ["import", str(path), "--format", "ndjson", "--chunk-rows", CHUNK_ROWS, "--report", "rejected.csv"]


async def by_email(repos: Repositories) -> dict[str, dict[str, Any]]:
    return {
        next(i.value for i in p.identities): metrics(p) | {"extensions": sorted(p.extensions)}
        for p in (await all_profiles(repos)).values()
    }


def start_import(path: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PROFILEGATE, *import_args(path)],
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

    resumed = run_cli(*import_args(path), cwd=tmp_path, env=store_env(store_uri, killed_db.name))
    whole = run_cli(*import_args(path), cwd=tmp_path, env=store_env(store_uri, whole_db.name))

    assert resumed.returncode == 0, resumed.stderr
    assert whole.returncode == 0, whole.stderr
    assert "1 files resumed from their checkpoint" in resumed.stderr
    assert 0 < done_when_killed < SHOPPERS * 8
    killed_repos, whole_repos = await prepare_for_test(killed_db), await prepare_for_test(whole_db)
    assert await by_email(killed_repos) == await by_email(whole_repos)
    assert len(await by_email(whole_repos)) == SHOPPERS
    logged = [len([e async for e in repos.events.scan()]) for repos in (killed_repos, whole_repos)]
    assert logged == [SHOPPERS * 8, SHOPPERS * 8]


def test_the_summary_names_what_was_imported_and_the_report_lists_rejected_rows(
    store_uri: str, database_name: str, tmp_path: Path
) -> None:
    args = ["import", str(SHOPIFY_FIXTURES / "orders_export.csv"), "--format", "shopify-orders-csv"]
    env = store_env(store_uri, database_name)

    first = run_cli(*args, "--report", "rejected.csv", cwd=tmp_path, env=env)
    again = run_cli(*args, "--report", "again.csv", cwd=tmp_path, env=env)

    assert first.returncode == 0, first.stderr
    assert "32 rows read, 22 events (21 accepted, 0 duplicates, 6 rejected)" in first.stderr
    assert "10 profiles created" in first.stderr
    lines = (tmp_path / "rejected.csv").read_text().splitlines()
    assert lines[0] == "file,line,reason"
    assert len(lines) == 7
    assert "1 files were imported before: nothing done again" in again.stderr
    assert not (tmp_path / "again.csv").exists()


def test_a_file_in_the_wrong_format_is_refused_naming_the_expected_columns(
    store_uri: str, database_name: str, tmp_path: Path
) -> None:
    customers = SHOPIFY_FIXTURES / "customers_export.csv"
    args = ["import", str(customers), "--format", "shopify-orders-csv"]

    refused = run_cli(*args, cwd=tmp_path, env=store_env(store_uri, database_name))

    assert refused.returncode == 2
    assert "missing the columns Name, Financial Status" in refused.stderr
    assert "expected a header with Name, Email, Financial Status, Paid at" in refused.stderr
