"""Importing files of a shop's history: streamed in chunks, applied by tracking, checkpointed.

Events go through :func:`profilegate.service.tracking.track`, the rules of ``POST /v1/track``
(dedupe on the event log's ids, aggregates, tiers, maintained extensions), but many at once:
each chunk of rows is sorted by the profile its events name and tracked in batches of up to
``batch_events``, so a profile is read and written once per batch however many of its events
the batch holds. Customer rows go through ``upsert_profile`` and ``set_extension``.

After each chunk the file's checkpoint (``import_checkpoints``) records how many of its records
are done, after the rows the chunk rejected are kept beside it. Killed at any moment, the same
command resumes after the last recorded chunk; the chunk that was under way is applied again,
and its events, logged once already, are duplicates, so the result is that of one
uninterrupted run: the rejected rows of the part done before are told again, and the identity
keys the killed run claimed for profiles it never stored are given up at once (every write of a
run carries its time, which the checkpoint names).
"""

import hashlib
import itertools
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from profilegate.domain.errors import DomainError, InvalidInput, UnknownExtension
from profilegate.domain.events import parse_event
from profilegate.domain.imports import ImportCheckpoint, ImportCounts
from profilegate.domain.keys import Principal, Role
from profilegate.domain.refs import ProfileRef
from profilegate.service.extensions import set_extension
from profilegate.service.imports.formats import ImportFormat, check_format, read_records
from profilegate.service.imports.observer import ImportObserver
from profilegate.service.imports.records import Customer, Events, RawEvent, Record, Rejected
from profilegate.service.imports.shopify_customers import CustomerOptions
from profilegate.service.observers import UNOBSERVED, ProfileObserver
from profilegate.service.profiles import ProfileRules, upsert_profile
from profilegate.service.tracking import MAX_BATCH, EventOutcome, Status, TrackingRules, track
from profilegate.storage.store import Repositories

IMPORTER = Principal(name="import", role=Role.ADMIN)
CHUNK_ROWS = 5_000
# A batch's lookups name each of its profiles (keys and tombstones): the embedded store's SQLite
# engine refuses a query of about a thousand terms ("Expression tree is too large (maximum depth
# 1000)"), which a batch of 2,000 events of 735 new customers reached. Half of tracking's own
# batch limit (MAX_BATCH) keeps well below it.
BATCH_EVENTS = MAX_BATCH // 2
HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class ImportOptions:
    format: ImportFormat
    tracking: TrackingRules
    customers: CustomerOptions = field(default_factory=CustomerOptions)
    chunk_rows: int = CHUNK_ROWS  # rows read, applied and checkpointed together
    batch_events: int = BATCH_EVENTS  # events per tracked batch, at most the tracking rules' max_batch
    strict: bool = False  # stop at the first rejected row, before its chunk is written
    dry_run: bool = False  # read, parse, validate and group, write nothing


@dataclass(frozen=True)
class RejectedRow:
    path: str
    line: int
    reason: str


@dataclass(frozen=True)
class ImportProgress:
    """Told when a run begins a file (``rows``: those earlier runs did), after each chunk, and
    when the file is done (then ``total_rows`` is ``rows``; before, the file's line count)."""

    path: str
    rows: int  # rows of this file done, those of earlier runs included
    total_rows: int


class FileState(StrEnum):
    IMPORTED = "imported"  # read from its first row by this run
    RESUMED = "resumed"  # an interrupted run had begun it; this run went on from its checkpoint
    DONE_BEFORE = "done before"  # an earlier run imported it to the end: nothing done again


@dataclass(frozen=True)
class FileResult:
    """One file of an import. ``counts``: the whole file's, those of the part an interrupted run
    did included; for a file done before, what that run counted, and ``finished_at`` its time."""

    path: str
    state: FileState
    counts: ImportCounts
    finished_at: datetime | None = None


@dataclass(frozen=True)
class ImportSummary:
    files: tuple[FileResult, ...]

    @property
    def counts(self) -> ImportCounts:
        """The counts of the files this run imported (a file done before adds nothing)."""
        return sum((f.counts for f in self.files if f.state is not FileState.DONE_BEFORE), ImportCounts())

    def count(self, state: FileState) -> int:
        return sum(f.state is state for f in self.files)

    @property
    def done_before(self) -> list[FileResult]:
        return [f for f in self.files if f.state is FileState.DONE_BEFORE]


class ImportStopped(Exception):
    """``strict``: a row was rejected; its chunk and everything after it were not written."""

    def __init__(self, rejected: RejectedRow) -> None:
        super().__init__(f"{rejected.path}, line {rejected.line}: {rejected.reason}")
        self.rejected = rejected


class FileTakenOver(Exception):
    """Another run of the same file took it over: this one stopped after its last chunk."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: another import of this file took it over; this run stopped")
        self.path = path


type Changed = Callable[[set[str]], Awaitable[None]]


@dataclass
class _Run:
    repos: Repositories
    options: ImportOptions
    now: datetime
    observer: ImportObserver
    changed: Changed | None
    rejected: Callable[[RejectedRow], None]
    progress: Callable[[ImportProgress], None]


async def import_files(
    repos: Repositories,
    paths: Sequence[Path],
    options: ImportOptions,
    now: datetime,
    *,
    observer: ProfileObserver = UNOBSERVED,
    changed: Changed | None = None,
    on_rejected: Callable[[RejectedRow], None] = lambda row: None,
    on_progress: Callable[[ImportProgress], None] = lambda progress: None,
) -> ImportSummary:
    """Import ``paths`` in ``options.format``; every file is checked before anything is written.

    ``observer``: the change feed (told one summary per profile written, no per-event entries);
    ``changed``: what tracking calls with the profiles it changed (maintained extensions);
    ``on_rejected``: told each rejected row of a file this run imports, in line order, those an
    interrupted run rejected before the checkpoint it resumes from included.
    Raises ``WrongFormat``, ``UnknownExtension`` before writing, ``ImportStopped`` if strict,
    ``FileTakenOver`` when another run of a file took it over.
    """
    for path in paths:
        check_format(path, options.format)
    await _check_extensions(repos, options.customers)
    run = _Run(repos, options, now, ImportObserver(observer), changed, on_rejected, on_progress)
    results: list[FileResult] = []
    for path in paths:
        checkpoint = await _checkpoint(run, path)
        if checkpoint.finished:
            results.append(
                FileResult(str(path), FileState.DONE_BEFORE, checkpoint.counts, checkpoint.finished_at)
            )
            continue
        state = FileState.RESUMED if checkpoint.records > 0 else FileState.IMPORTED
        results.append(FileResult(str(path), state, await _import_file(run, path, checkpoint)))
    return ImportSummary(tuple(results))


async def _check_extensions(repos: Repositories, customers: CustomerOptions) -> None:
    for extension in sorted(set(customers.tag_extensions.values())):
        if await repos.extension_definitions.get(extension) is None:
            raise UnknownExtension(extension)


async def _checkpoint(run: _Run, path: Path) -> ImportCheckpoint:
    key = f"{run.options.format.value}:{file_digest(path)}"
    if run.options.format is ImportFormat.SHOPIFY_CUSTOMERS:
        # Another tag mapping or column choice makes other profiles of the same file.
        chosen = run.options.customers
        asked = (sorted(chosen.tag_extensions.items()), chosen.keep_unknown_columns, chosen.consent_purposes)
        key += ":" + hashlib.sha256(repr(asked).encode()).hexdigest()[:16]
    if run.options.dry_run:
        return ImportCheckpoint(key)
    return await run.repos.import_checkpoints.get(key) or ImportCheckpoint(key)


def file_digest(path: Path) -> str:
    """The SHA-256 of the file's content, read a block at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def count_lines(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(block.count(b"\n") for block in iter(lambda: stream.read(HASH_BLOCK), b""))


async def _import_file(run: _Run, path: Path, checkpoint: ImportCheckpoint) -> ImportCounts:
    checkpoint = await _hold(run, path, checkpoint)
    records = read_records(path, run.options.format, run.options.customers)
    rows_done = sum(record.rows for record in itertools.islice(records, checkpoint.records))
    if checkpoint.records and not run.options.dry_run:
        async for line, reason in run.repos.import_checkpoints.rejections(checkpoint.key, checkpoint.records):
            run.rejected(RejectedRow(str(path), line, reason))
    total_rows = count_lines(path)
    run.progress(ImportProgress(str(path), rows_done, total_rows))  # where this run starts the file
    for chunk in _chunks(records, run.options.chunk_rows):
        counts, rejected = await _apply_chunk(run, str(path), chunk)
        created, updated = run.observer.take_counts()
        start = checkpoint.records
        checkpoint = checkpoint.advanced(
            len(chunk), replace(counts, profiles_created=created, profiles_updated=updated)
        )
        if not run.options.dry_run:
            kept = [(row.line, row.reason) for row in rejected]
            await run.repos.import_checkpoints.keep_rejections(
                checkpoint.key, start, checkpoint.records, kept
            )
            await _save(run, path, checkpoint)
        for row in rejected:
            run.rejected(row)
        rows_done += counts.rows
        run.progress(ImportProgress(str(path), rows_done, total_rows))
    # The lines counted were an estimate (a header, empty lines, a record over several lines).
    run.progress(ImportProgress(str(path), rows_done, rows_done))
    checkpoint = replace(checkpoint, finished=True, finished_at=run.now)
    if not run.options.dry_run:
        await _save(run, path, checkpoint)
        # Kept only for a resumed run; a file imported to the end is not read again.
        await run.repos.import_checkpoints.drop_rejections_after(checkpoint.key, 0)
    return checkpoint.counts


async def _hold(run: _Run, path: Path, checkpoint: ImportCheckpoint) -> ImportCheckpoint:
    """Make this run the file's holder, after a run that was killed half-way: what that run's
    checkpoint does not cover is undone, so it is done again as if for the first time."""
    if run.options.dry_run:
        return checkpoint
    previous = checkpoint.run_at
    held = replace(checkpoint, run_at=run.now)
    if not await run.repos.import_checkpoints.save(held, previous):
        raise FileTakenOver(str(path))
    if previous is not None:
        await _release_orphan_claims(run.repos, previous)
    await run.repos.import_checkpoints.drop_rejections_after(checkpoint.key, checkpoint.records)
    return held


async def _release_orphan_claims(repos: Repositories, run_at: datetime) -> None:
    """Give up the identity keys the run of ``run_at`` claimed for profiles it never stored (it was
    killed in between): that run is over, so they need not wait for ``ORPHAN_GRACE``."""
    claims = await repos.identity_keys.claimed_at_time(run_at)
    stored = await repos.profiles.get_many(set(claims.values()))
    for key, profile_id in claims.items():
        if profile_id not in stored:
            await repos.identity_keys.release_claim(key, profile_id, run_at)


async def _save(run: _Run, path: Path, checkpoint: ImportCheckpoint) -> None:
    if not await run.repos.import_checkpoints.save(checkpoint, run.now):
        raise FileTakenOver(str(path))


def _chunks(records: Iterator[Record], rows: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    size = 0
    for record in records:
        chunk.append(record)
        size += record.rows
        if size >= rows:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


async def _apply_chunk(run: _Run, path: str, chunk: list[Record]) -> tuple[ImportCounts, list[RejectedRow]]:
    """What the chunk's rows did, and the rows it rejected in line order."""
    unread = [record for record in chunk if isinstance(record, Rejected)]
    rejected = [RejectedRow(path, record.line, record.reason) for record in unread]
    if run.options.strict:
        _stop_at_first(rejected + _invalid_events(run, path, chunk))
    counts = ImportCounts(
        rows=sum(record.rows for record in chunk), rows_rejected=sum(record.rows for record in unread)
    )
    events = [(record, raw) for record in chunk if isinstance(record, Events) for raw in record.events]
    customers = [record for record in chunk if isinstance(record, Customer)]
    if run.options.dry_run:
        counts += _validated(run, path, events, rejected) + ImportCounts(customers=len(customers))
    else:
        counts += await _track_events(run, path, events, rejected)
        counts += await _upsert_customers(run, path, customers, rejected)
    return counts, sorted(rejected, key=lambda row: row.line)


def _stop_at_first(rejected: list[RejectedRow]) -> None:
    if rejected:
        raise ImportStopped(min(rejected, key=lambda row: row.line))


def _invalid_events(run: _Run, path: str, chunk: list[Record]) -> list[RejectedRow]:
    found = []
    for record in chunk:
        if isinstance(record, Events):
            for raw in record.events:
                try:
                    parse_event(raw, run.options.tracking.events, run.now)
                except InvalidInput as error:
                    found.append(RejectedRow(path, record.line, _in_columns(error.message, record)))
    return found


def _validated(
    run: _Run, path: str, events: list[tuple[Events, RawEvent]], rejected: list[RejectedRow]
) -> ImportCounts:
    """A dry run: each event parsed as tracking would, nothing written."""
    refused = 0
    for record, raw in events:
        try:
            parse_event(raw, run.options.tracking.events, run.now)
        except InvalidInput as error:
            refused += 1
            rejected.append(RejectedRow(path, record.line, _in_columns(error.message, record)))
    return ImportCounts(events=len(events), accepted=len(events) - refused, rejected=refused)


async def _track_events(
    run: _Run, path: str, events: list[tuple[Events, RawEvent]], rejected: list[RejectedRow]
) -> ImportCounts:
    ordered = sorted(events, key=lambda pair: _profile_key(pair[1]))
    tracking = run.options.tracking
    rules = replace(tracking, max_batch=min(run.options.batch_events, tracking.max_batch))
    counts = ImportCounts(events=len(events))
    for start in range(0, len(ordered), rules.max_batch):
        batch = ordered[start : start + rules.max_batch]
        result = await track(
            run.repos, [raw for _, raw in batch], rules, run.now, changed=run.changed, observer=run.observer
        )
        for (record, _), outcome in zip(batch, result.results, strict=True):
            counts += _counted(path, record, outcome, rejected)
    return counts


def _counted(path: str, record: Events, outcome: EventOutcome, rejected: list[RejectedRow]) -> ImportCounts:
    match outcome.status:
        case Status.ACCEPTED:
            return ImportCounts(accepted=1)
        case Status.DUPLICATE:
            return ImportCounts(duplicates=1)
        case Status.REJECTED:
            rejected.append(RejectedRow(path, record.line, _in_columns(outcome.reason or "rejected", record)))
            return ImportCounts(rejected=1)


def _in_columns(reason: str, record: Events) -> str:
    """Tracking's reason, the event field it names replaced by the file's column as written there
    (``properties.items[1].quantity: ...`` -> ``order #1001: Lineitem quantity: ...``)."""
    field_path, separator, rest = reason.partition(": ")
    if not separator or not record.columns:
        return reason
    general = re.sub(r"\[\d+\]", "[]", field_path)
    label = f"{record.label}: " if record.label else ""
    for event_field, column in record.columns:
        if general == event_field or general.startswith((event_field + ".", event_field + "[")):
            return f"{label}{column}: {rest}"
    return label + reason


def _profile_key(raw: RawEvent) -> tuple[str, str]:
    """Events of one person next to each other (the exact grouping is tracking's)."""
    identity = raw.get("identity")
    if isinstance(identity, dict):
        return str(identity.get("type")), str(identity.get("value", "")).strip().lower()
    if "anonymousId" in raw:
        return "ANONYMOUS_ID", str(raw["anonymousId"])
    return "PROFILE", str(raw.get("profileId", ""))


async def _upsert_customers(
    run: _Run, path: str, customers: Iterable[Customer], rejected: list[RejectedRow]
) -> ImportCounts:
    counts = ImportCounts()
    for customer in customers:
        try:
            await _upsert_customer(run, customer)
        except DomainError as error:
            row = RejectedRow(path, customer.line, error.message)
            if run.options.strict:
                raise ImportStopped(row) from error
            rejected.append(row)
            counts += ImportCounts(rows_rejected=customer.rows)
        else:
            counts += ImportCounts(customers=customer.rows)
    return counts


async def _upsert_customer(run: _Run, customer: Customer) -> None:
    rules: ProfileRules = run.options.tracking.profiles
    await upsert_profile(
        run.repos,
        replace(customer.change, ref=_ref(customer)),
        rules,
        run.now,
        observer=run.observer,
    )
    for extension, tag in customer.extensions:
        await set_extension(
            run.repos,
            _ref(customer),
            extension,
            f"Shopify tag {tag!r}",
            None,
            IMPORTER,
            run.now,
            source="import",
            observer=run.observer,
        )


def _ref(customer: Customer) -> ProfileRef:
    return ProfileRef(identity=customer.change.identities[0])
