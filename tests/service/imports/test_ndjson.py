"""Importing NDJSON event files: exactly once, checkpointed, bad rows reported, bad files refused."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from profilegate.domain.changes import ChangeKind
from profilegate.domain.errors import UnknownExtension
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.imports import ImportCounts
from profilegate.service.changes import ChangeRecorder
from profilegate.service.imports import (
    CustomerOptions,
    FileState,
    ImportFormat,
    ImportProgress,
    ImportStopped,
    RejectedRow,
    WrongFormat,
    import_files,
)
from profilegate.service.profiles import ProfileRules
from profilegate.service.segments import SegmentCatalogue
from profilegate.service.tiers import ActivePolicy
from profilegate.storage.documents import Database
from profilegate.storage.store import Repositories
from tests.service.imports.files import implied_metrics, options, write_ndjson
from tests.service.raw_events import email_ref, event, shopping_batch
from tests.service.test_event_ids import assert_rebuild_changes_nothing
from tests.service.test_rebuild import all_profiles, profile_of

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
CUSTOMERS = [f"shopper{number}@example.com" for number in range(6)]


def history() -> list[dict[str, Any]]:
    """Several customers' shopping, interleaved as a shop's log would be."""
    batches = [
        shopping_batch(email, NOW - timedelta(days=n), prefix=f"h{n}") for n, email in enumerate(CUSTOMERS)
    ]
    return [item for round_ in zip(*batches, strict=True) for item in round_]


def recorder(repos: Repositories, catalogue: SegmentCatalogue) -> ChangeRecorder:
    """The change feed as ``profilegate import`` writes it."""
    policy = ActivePolicy(repos.tier_policies, cache_seconds=0)
    return ChangeRecorder(repos.changes, catalogue, policy, partner_purpose="partner_sharing")


async def metrics_of(repos: Repositories) -> dict[str, tuple[int, Decimal]]:
    found = {}
    for email in CUSTOMERS:
        aggregates = (await profile_of(repos, email)).aggregates
        found[email] = (aggregates.orders, Decimal(aggregates.net).scaleb(-2))
    return found


async def test_importing_a_file_twice_gives_the_metrics_its_events_imply(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    events = history()
    first = write_ndjson(tmp_path / "events.ndjson", events)
    # The same events, newest first: another file (no checkpoint), every event a duplicate.
    again = write_ndjson(tmp_path / "again.ndjson", events[::-1])

    imported = await import_files(repos, [first], options(rules, chunk_rows=7, batch_events=5), NOW)
    repeated = await import_files(repos, [again], options(rules, chunk_rows=7, batch_events=5), NOW)

    assert await metrics_of(repos) == implied_metrics(events)
    assert (imported.counts.accepted, imported.counts.duplicates) == (len(events), 0)
    assert (repeated.counts.accepted, repeated.counts.duplicates) == (0, len(events))
    assert imported.counts.profiles_created == len(CUSTOMERS)
    await assert_rebuild_changes_nothing(repos)


async def test_a_file_imported_before_is_not_read_again(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "events.ndjson", history())
    first = await import_files(repos, [path], options(rules), NOW)

    second = await import_files(repos, [path], options(rules), NOW)

    assert [result.state for result in second.files] == [FileState.DONE_BEFORE]
    assert second.files[0].counts == first.counts  # what the earlier run counted
    assert second.counts == ImportCounts()  # nothing done by this run
    assert await metrics_of(repos) == implied_metrics(history())


async def test_events_without_ids_are_named_by_their_content_so_an_overlapping_file_adds_only_the_new(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    events = [{key: value for key, value in item.items() if key != "id"} for item in history()]
    half = len(events) // 2
    older = write_ndjson(tmp_path / "older.ndjson", events[: half + 4])
    newer = write_ndjson(tmp_path / "newer.ndjson", events[half:])

    await import_files(repos, [older], options(rules), NOW)
    overlap = await import_files(repos, [newer], options(rules), NOW)

    assert (overlap.counts.duplicates, overlap.counts.accepted) == (4, len(events) - half - 4)
    assert await metrics_of(repos) == implied_metrics(history())


async def test_bad_lines_are_reported_with_their_line_and_the_rest_is_imported(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    good = shopping_batch(CUSTOMERS[0], NOW, prefix="g")
    path = tmp_path / "events.ndjson"
    write_ndjson(path, good)
    with path.open("a") as stream:
        stream.write("{not json\n")
        stream.write('["a", "list"]\n')
        stream.write('{"id": "bad-amount", "type": "order_returned", "at": "2026-11-01T10:00:00Z", '
                     '"channel": "web", "identity": {"type": "EMAIL", "value": "x@example.com"}, '
                     '"properties": {"orderId": "o", "amount": "ten"}}\n')  # fmt: skip
    rejected: list[RejectedRow] = []

    summary = await import_files(repos, [path], options(rules), NOW, on_rejected=rejected.append)

    assert [(row.line, row.reason.split(":")[0]) for row in sorted(rejected, key=lambda r: r.line)] == [
        (len(good) + 1, "not valid JSON"),
        (len(good) + 2, "a line must hold one JSON object, a tracking event"),
        (len(good) + 3, "properties.amount"),
    ]
    counts = summary.counts
    assert (counts.rows, counts.rows_rejected, counts.events) == (len(good) + 3, 2, len(good) + 1)
    assert (counts.accepted, counts.rejected) == (len(good), 1)
    assert (await profile_of(repos, CUSTOMERS[0])).aggregates.orders == 2


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xef\xbb\xbf" + b'{"type": "page_view"}\n', "byte order mark"),
        (b"\x00\x01\x02binary", "binary"),
        ('{"type": "page_view", "url": "Straße"}\n'.encode("latin-1"), "not UTF-8"),
        (b"Name,Email,Total\n#1001,a@example.com,10.00\n", "expected NDJSON"),
    ],
)
async def test_a_file_in_the_wrong_format_stops_before_anything_is_written(
    repos: Repositories, rules: ProfileRules, tmp_path: Path, content: bytes, problem: str
) -> None:
    good = write_ndjson(tmp_path / "good.ndjson", history())
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(content)

    with pytest.raises(WrongFormat, match=problem):
        await import_files(repos, [good, bad], options(rules), NOW)

    assert await all_profiles(repos) == {}


async def test_strict_stops_at_the_first_rejected_row_before_its_chunk_is_written(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    first, second = (shopping_batch(email, NOW, prefix=email[:8]) for email in CUSTOMERS[:2])
    broken = {**second[0], "at": "yesterday"}
    path = write_ndjson(tmp_path / "events.ndjson", [*first, broken, *second[1:]])

    with pytest.raises(ImportStopped) as stopped:
        await import_files(repos, [path], options(rules, strict=True, chunk_rows=len(first)), NOW)

    assert (stopped.value.rejected.line, stopped.value.rejected.reason.split(":")[0]) == (
        len(first) + 1,
        "at",
    )
    assert (await profile_of(repos, CUSTOMERS[0])).aggregates.orders == 2
    assert CUSTOMERS[1] not in {i.value for p in (await all_profiles(repos)).values() for i in p.identities}


async def test_the_feed_gets_one_summary_per_imported_profile_and_no_entry_per_event(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "events.ndjson", history())
    feed = recorder(repos, SegmentCatalogue(repos, cache_seconds=0))

    await import_files(repos, [path], options(rules, chunk_rows=10_000), NOW, observer=feed)

    changes = await repos.changes.read(0, limit=1000)
    assert ChangeKind.EVENT_TRACKED not in {change.kind for change in changes}
    summaries = {c.profile_id: c.payload for c in changes if c.kind is ChangeKind.EVENTS_IMPORTED}
    assert sorted(summaries) == sorted((await all_profiles(repos)).keys())
    per_customer = len(history()) // len(CUSTOMERS)
    assert {payload["events"] for payload in summaries.values()} == {per_customer}


async def test_a_tag_mapped_to_an_undefined_extension_stops_before_anything_is_written(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "events.ndjson", [event("p1", "page_view", NOW, email_ref(CUSTOMERS[0]))])
    customers = CustomerOptions(tag_extensions={"VIP": "no-such-extension"})

    with pytest.raises(UnknownExtension):
        await import_files(repos, [path], options(rules, ImportFormat.NDJSON, customers=customers), NOW)

    assert await all_profiles(repos) == {}


async def test_a_chunk_of_a_thousand_and_more_customers_is_imported(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    emails = [f"many{number}@example.com" for number in range(1100)]
    events = [
        event(f"m{n}", "page_view", NOW - timedelta(hours=1), email_ref(e)) for n, e in enumerate(emails)
    ]
    path = write_ndjson(tmp_path / "events.ndjson", events)
    catalogue = SegmentCatalogue(repos, cache_seconds=0)
    feed = recorder(repos, catalogue)

    summary = await import_files(
        repos, [path], options(rules), NOW, observer=feed, changed=catalogue.follow(NOW, feed)
    )

    assert (summary.counts.accepted, summary.counts.profiles_created) == (1100, 1100)


class Killed(Exception):
    """Stands for a kill right after a chunk was checkpointed."""


def kill_after_first_chunk(progress: ImportProgress) -> None:
    if progress.rows > 0:
        raise Killed


async def test_a_resumed_import_tells_the_rejected_rows_of_the_part_done_before_in_line_order(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    first, second = (shopping_batch(email, NOW, prefix=email[:8]) for email in CUSTOMERS[:2])
    bad_amount = {**first[4], "id": "bad-amount", "properties": {**first[4]["properties"], "total": "ten"}}
    path = write_ndjson(tmp_path / "events.ndjson", [bad_amount, *first, *second])
    with path.open("a") as stream:
        stream.write("{not json\n")
    chunked = options(rules, chunk_rows=len(first))
    with pytest.raises(Killed):
        await import_files(repos, [path], chunked, NOW, on_progress=kill_after_first_chunk)
    told: list[RejectedRow] = []

    resumed = await import_files(repos, [path], chunked, NOW + timedelta(seconds=1), on_rejected=told.append)

    assert [result.state for result in resumed.files] == [FileState.RESUMED]
    assert [(row.line, row.reason.split(":")[0]) for row in told] == [
        (1, "properties.total"),
        (len(first) + len(second) + 2, "not valid JSON"),
    ]
    assert (resumed.counts.rows, resumed.counts.rows_rejected, resumed.counts.rejected) == (
        len(first) + len(second) + 2,
        1,
        1,
    )


async def test_a_resumed_import_takes_over_at_once_the_keys_its_killed_run_claimed_for_no_profile(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    first, second = (shopping_batch(email, NOW, prefix=email[:8]) for email in CUSTOMERS[:2])
    path = write_ndjson(tmp_path / "events.ndjson", [*first, *second])
    chunked = options(rules, chunk_rows=len(first))
    with pytest.raises(Killed):
        await import_files(repos, [path], chunked, NOW, on_progress=kill_after_first_chunk)
    # Killed between claiming the second customer's key and storing that customer's profile:
    key = email_ref(CUSTOMERS[1])["identity"]
    orphan = normalise_identity(IdentityType.EMAIL, key["value"]).key
    assert await repos.identity_keys.claim(orphan, "never-stored", NOW) == "never-stored"

    # Within ORPHAN_GRACE of the killed run's claim.
    resumed = await import_files(repos, [path], chunked, NOW + timedelta(seconds=1))

    assert (resumed.counts.accepted, resumed.counts.rejected) == (len(first) + len(second), 0)
    assert (await profile_of(repos, CUSTOMERS[1])).aggregates.orders == 2
    assert await repos.identity_keys.owner(orphan) == (await profile_of(repos, CUSTOMERS[1])).id


async def test_the_rejections_kept_for_a_resumed_run_are_dropped_once_the_file_is_done(
    repos: Repositories, rules: ProfileRules, tmp_path: Path, database: Database
) -> None:
    path = write_ndjson(tmp_path / "events.ndjson", history())
    with path.open("a") as stream:
        stream.write("{not json\n")

    await import_files(repos, [path], options(rules, chunk_rows=5), NOW)

    assert await database["import_rejections"].count_documents({}) == 0


async def test_progress_is_told_where_a_file_begins_and_that_it_is_done(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "events.ndjson", history())
    path.write_text(path.read_text() + "\n\n")  # empty lines: counted as lines, not rows
    told: list[ImportProgress] = []

    await import_files(repos, [path], options(rules, chunk_rows=10), NOW, on_progress=told.append)

    rows = len(history())
    assert (told[0].rows, told[0].total_rows) == (0, rows + 2)  # a rate counts from here
    assert (told[-1].rows, told[-1].total_rows) == (rows, rows)
