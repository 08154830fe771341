"""Importing files of a shop's history: streamed in chunks, applied by tracking, checkpointed.

Events go through :func:`profilegate.service.tracking.track`, the rules of ``POST /v1/track``
(dedupe on the event log's ids, aggregates, tiers, maintained extensions), but many at once:
each chunk of rows is sorted by the profile its events name and tracked in batches of up to
``batch_events``, so a profile is read and written once per batch however many of its events
the batch holds. Customer rows go through ``upsert_profile`` and ``set_extension``.

After each chunk the file's checkpoint (``import_checkpoints``) records how many of its records
are done. Killed at any moment, the same command resumes after the last recorded chunk; the
chunk that was under way is applied again, and its events, logged once already, are
duplicates, so the result is that of one uninterrupted run.
"""

import hashlib
import itertools
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
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
    path: str
    rows: int  # rows of this file done, those of earlier runs included
    total_rows: int


@dataclass(frozen=True)
class ImportSummary:
    counts: ImportCounts
    files: int
    resumed: int  # files an earlier run had begun
    already_done: int  # files an earlier run had finished: nothing done again


class ImportStopped(Exception):
    """``strict``: a row was rejected; its chunk and everything after it were not written."""

    def __init__(self, rejected: RejectedRow) -> None:
        super().__init__(f"{rejected.path}, line {rejected.line}: {rejected.reason}")
        self.rejected = rejected


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
    ``changed``: what tracking calls with the profiles it changed (maintained extensions).
    Raises ``WrongFormat``, ``UnknownExtension`` before writing, ``ImportStopped`` if strict.
    """
    for path in paths:
        check_format(path, options.format)
    await _check_extensions(repos, options.customers)
    run = _Run(repos, options, now, ImportObserver(observer), changed, on_rejected, on_progress)
    total, resumed, done = ImportCounts(), 0, 0
    for path in paths:
        checkpoint = await _checkpoint(run, path)
        resumed += checkpoint.records > 0 and not checkpoint.finished
        done += checkpoint.finished
        total += checkpoint.counts if checkpoint.finished else await _import_file(run, path, checkpoint)
    return ImportSummary(total, len(paths), resumed, done)


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
    records = read_records(path, run.options.format, run.options.customers)
    rows_done = sum(record.rows for record in itertools.islice(records, checkpoint.records))
    total_rows = count_lines(path)
    for chunk in _chunks(records, run.options.chunk_rows):
        counts = await _apply_chunk(run, str(path), chunk)
        created, updated = run.observer.take_counts()
        checkpoint = checkpoint.advanced(
            len(chunk), replace(counts, profiles_created=created, profiles_updated=updated)
        )
        if not run.options.dry_run:
            await run.repos.import_checkpoints.save(checkpoint)
        rows_done += counts.rows
        run.progress(ImportProgress(str(path), rows_done, total_rows))
    checkpoint = replace(checkpoint, finished=True)
    if not run.options.dry_run:
        await run.repos.import_checkpoints.save(checkpoint)
    return checkpoint.counts


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


async def _apply_chunk(run: _Run, path: str, chunk: list[Record]) -> ImportCounts:
    rejected = [RejectedRow(path, r.line, r.reason) for r in chunk if isinstance(r, Rejected)]
    if run.options.strict:
        _stop_at_first(rejected + _invalid_events(run, path, chunk))
    for row in rejected:
        run.rejected(row)
    counts = ImportCounts(rows=sum(record.rows for record in chunk), rejected=len(rejected))
    events = [(record, raw) for record in chunk if isinstance(record, Events) for raw in record.events]
    customers = [record for record in chunk if isinstance(record, Customer)]
    if run.options.dry_run:
        return counts + _validated(run, path, events)
    return counts + await _track_events(run, path, events) + await _upsert_customers(run, path, customers)


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


def _validated(run: _Run, path: str, events: list[tuple[Events, RawEvent]]) -> ImportCounts:
    """A dry run: each event parsed as tracking would, grouped by profile, nothing written."""
    rejected = 0
    profiles: dict[object, int] = {}
    for record, raw in events:
        try:
            event = parse_event(raw, run.options.tracking.events, run.now)
        except InvalidInput as error:
            rejected += 1
            run.rejected(RejectedRow(path, record.line, _in_columns(error.message, record)))
            continue
        profiles[event.target] = profiles.get(event.target, 0) + 1
    return ImportCounts(events=len(events), accepted=len(events) - rejected, rejected=rejected)


async def _track_events(run: _Run, path: str, events: list[tuple[Events, RawEvent]]) -> ImportCounts:
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
            counts += _counted(run, path, record, outcome)
    return counts


def _counted(run: _Run, path: str, record: Events, outcome: EventOutcome) -> ImportCounts:
    match outcome.status:
        case Status.ACCEPTED:
            return ImportCounts(accepted=1)
        case Status.DUPLICATE:
            return ImportCounts(duplicates=1)
        case Status.REJECTED:
            run.rejected(RejectedRow(path, record.line, _in_columns(outcome.reason or "rejected", record)))
            return ImportCounts(rejected=1)


def _in_columns(reason: str, record: Events) -> str:
    """Tracking's reason, the event field it names replaced by the file's column."""
    for event_field, column in record.columns:
        if reason.startswith(event_field):
            return f"{column} ({event_field}){reason[len(event_field) :]}"
    return reason


def _profile_key(raw: RawEvent) -> tuple[str, str]:
    """Events of one person next to each other (the exact grouping is tracking's)."""
    identity = raw.get("identity")
    if isinstance(identity, dict):
        return str(identity.get("type")), str(identity.get("value", "")).strip().lower()
    if "anonymousId" in raw:
        return "ANONYMOUS_ID", str(raw["anonymousId"])
    return "PROFILE", str(raw.get("profileId", ""))


async def _upsert_customers(run: _Run, path: str, customers: Iterable[Customer]) -> ImportCounts:
    counts = ImportCounts()
    for customer in customers:
        try:
            await _upsert_customer(run, customer)
        except DomainError as error:
            row = RejectedRow(path, customer.line, error.message)
            if run.options.strict:
                raise ImportStopped(row) from error
            run.rejected(row)
            counts += ImportCounts(rejected=1)
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
