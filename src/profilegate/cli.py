"""The ``profilegate`` command line."""

import asyncio
import contextlib
import enum
import gc
import os
import shlex
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, BinaryIO

import orjson
import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from profilegate import shop_report
from profilegate.api import access_table
from profilegate.api.prometheus import clear_multiprocess_metrics
from profilegate.api.schema import schema_sdl
from profilegate.check_display import change_lines, check_summary, difference_lines
from profilegate.destinations_display import (
    dead_letter_row,
    delivery_row,
    destination_lines,
    destination_row,
    option_of,
)
from profilegate.domain.changes import ChangeKind
from profilegate.domain.destinations import (
    DeadLetterNotFound,
    Delivery,
    Destination,
    DestinationExists,
    DestinationNotFound,
    DestinationSpec,
    Selection,
)
from profilegate.domain.errors import DomainError, InvalidInput, ProfileNotFound
from profilegate.domain.events import Channel
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.keys import ApiKey, Role
from profilegate.domain.refs import ProfileRef
from profilegate.domain.shop_metrics import Granularity, MetricsQuery, ShopReport
from profilegate.domain.shopper_proofs import HEADER_NAME, MAX_LIFETIME_SECONDS
from profilegate.embedded import EmbeddedStore, EmbeddedStoreError, running_store_uri
from profilegate.import_display import import_progress, import_summary, rejects_files
from profilegate.logs import log_config
from profilegate.service.aggregate_check import Checked, check_aggregates
from profilegate.service.audiences import AudienceRequest, ExportFormat, audience_size, export_audience
from profilegate.service.changes import ChangeRecorder
from profilegate.service.destinations.admin import (
    WithSecret,
    create_destination,
    delete_destination,
    destination_lag,
    get_destination,
    pause_destination,
    replay_dead_letter,
    resend_range,
    resume_destination,
    resync_destination,
    rotate_secret,
)
from profilegate.service.gdpr import export_profile
from profilegate.service.imports import (
    CustomerOptions,
    FileTakenOver,
    ImportFormat,
    ImportOptions,
    ImportProgress,
    ImportStopped,
    ImportSummary,
    RejectedRow,
    WrongFormat,
    import_files,
)
from profilegate.service.imports.run import BATCH_EVENTS, CHUNK_ROWS
from profilegate.service.keys import CreatedKey, create_key
from profilegate.service.rebuild import Progress as RebuildProgress
from profilegate.service.rebuild import Rebuilt, rebuild_aggregates
from profilegate.service.seed import SeedRules
from profilegate.service.seed import seed as load_fixtures
from profilegate.service.segments import SegmentCatalogue
from profilegate.service.segments import refresh_segments as refresh_segment_state
from profilegate.service.shop_metrics import rebuild_shop_days, shop_metrics
from profilegate.service.tiers import ActivePolicy
from profilegate.service.tracking import MAX_BATCH
from profilegate.settings import Settings
from profilegate.storage.destinations import DeadLetter, DeliveryRecord
from profilegate.storage.index_plan import Retentions, create_planned, mongosh_script, planned_indexes
from profilegate.storage.layout import Layout, load_layout
from profilegate.storage.store import Repositories, open_client, prepare

app = typer.Typer(
    help="profilegate: a profile-enrichment GraphQL gateway for online shops.", no_args_is_help=True
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
destinations_app = typer.Typer(
    help="Define, watch and replay destinations: HTTPS endpoints the change feed is pushed to.",
    no_args_is_help=True,
)
app.add_typer(destinations_app, name="destinations")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="PROFILEGATE_DATA_DIR",
        help="Embedded store's directory (default ./data).",
    ),
]


class KeyOutput(enum.StrEnum):
    """How ``keys create`` prints a new key."""

    TEXT = "text"
    ENV = "env"


def _settings(data_dir: Path | None) -> Settings:
    """The settings from the environment; a bad one stops the command with what is wrong."""
    try:
        return Settings() if data_dir is None else Settings(data_dir=data_dir)
    except ValidationError as error:
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            typer.echo(f"invalid setting {where}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[
        int, typer.Option(min=1, envvar="PROFILEGATE_WORKERS", help="Gateway processes sharing one store.")
    ] = 1,
) -> None:
    """Run the gateway. Without MONGODB_URI it starts the embedded store in the data directory."""
    settings = _settings(data_dir)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with contextlib.ExitStack() as stack:
        if settings.mongodb_uri is None:
            store = stack.enter_context(
                EmbeddedStore(data_dir=settings.data_dir, engine=settings.embedded_engine)
            )
            # The workers find the store by its URI and are told it is the embedded one, so
            # they lay out and index the database for it (Settings.layout, create_app).
            os.environ["MONGODB_URI"] = str(store.uri)
            os.environ["PROFILEGATE_EMBEDDED_STORE_RUNNING"] = "true"
            typer.echo(f"embedded store serving {settings.data_dir.resolve()} at {store.uri}", err=True)
        clear_multiprocess_metrics()
        uvicorn.run(
            "profilegate.app:app_from_environment",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=settings.access_log,
            proxy_headers=True,
            log_config=log_config(settings.log_format_in_use, settings.log_level),
        )


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Leave ``serve`` through its ``with`` blocks, so the embedded store is stopped too.

    With one worker, uvicorn re-raises the SIGTERM it shut down on; under the default handler
    that would end this process on the spot and orphan the store. A second SIGTERM kills.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(0)


@app.command()
def seed(
    data_dir: DataDir = None,
    fixtures: Annotated[
        Path,
        typer.Option(help="Folder with extensions.json, profiles.json, tier_policy.json, segments.json."),
    ] = PROJECT_ROOT / "fixtures",
) -> None:
    """Load the demo data: extension definitions, a few dozen profiles, a few thousand events
    for them, the default tier policy and demo segments. Safe to repeat: the second time every
    event is a duplicate, an active tier policy is left alone and segments are saved again."""
    settings = _settings(data_dir)

    async def run() -> None:
        async with _repositories(settings) as repos:
            rules = SeedRules(settings.tracking_rules, settings.tier_rules, settings.segment_rules)
            seeded = await load_fixtures(repos, fixtures, rules, datetime.now(UTC))
        summary = (
            f"{seeded.definitions} extension definitions, {seeded.profiles_created} profiles created, "
            f"{seeded.profiles_updated} already there; {seeded.events_accepted} events accepted, "
            f"{seeded.events_duplicate} duplicates"
        )
        if seeded.events_rejected:
            summary += f", {seeded.events_rejected} rejected"
        typer.echo(summary, err=True)
        if seeded.tier_policy_version is None:
            typer.echo("a tier policy was active already: left as it is", err=True)
        else:
            typer.echo(
                f"default tier policy published as version {seeded.tier_policy_version}, active", err=True
            )
        typer.echo(f"{seeded.segments} segments saved", err=True)

    asyncio.run(run())


@app.command("create-indexes")
def create_indexes(
    print_only: Annotated[
        bool,
        typer.Option(
            "--print", help="Print the collections, indexes and shard commands as mongosh JavaScript."
        ),
    ] = False,
) -> None:
    """Create every collection and index of the MongoDB layout ahead of a deploy, on the
    database MONGODB_URI and PROFILEGATE_DATABASE name. Safe to repeat."""
    settings = Settings()
    plan = planned_indexes(_retentions(settings), segment_indexes=settings.segment_indexes)
    if print_only:
        typer.echo(mongosh_script(settings.database, plan), nl=False)
        return
    if settings.mongodb_uri is None:
        typer.echo(
            "error: set MONGODB_URI (the embedded store's gateway creates its indexes itself)", err=True
        )
        raise typer.Exit(2)

    async def run() -> Layout:
        client = open_client(settings.mongodb_uri or "")
        try:
            database = client[settings.database]
            layout = await load_layout(database, Layout())
            if layout == Layout():
                await create_planned(database, plan)
            return layout
        finally:
            await client.close()

    layout = asyncio.run(run())
    if layout != Layout():
        typer.echo(
            f"error: database {settings.database} is laid out for the embedded store ({layout})", err=True
        )
        raise typer.Exit(1)
    count = sum(len(models) for models in plan.values())
    typer.echo(f"{len(plan)} collections and {count} indexes ready in {settings.database}", err=True)


def _retentions(settings: Settings) -> Retentions:
    return Retentions(
        events=settings.event_retention_days * 86_400,
        changes=settings.change_retention_days * 86_400,
        tombstones=settings.tombstone_retention_days * 86_400,
        audit=settings.audit_retention_days * 86_400,
        destination_deliveries=settings.destinations_log_retention_days * 86_400,
    )


@app.command("rebuild-aggregates")
def rebuild(
    data_dir: DataDir = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing: compare the profiles, checkout payloads, segment memberships and shop "
            "day rollups with the event log, print each difference (tab-separated: subject, id, "
            "metric, live, from the log) and exit 1 if there is one, 0 if not.",
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="List every changed metric with its value before and after.")
    ] = False,
) -> None:
    """Recompute every profile's aggregates and the shop's day rollups from the event log, and
    say which profiles changed in what. Safe while the gateway runs."""
    settings = _settings(data_dir)
    if check:
        raise typer.Exit(_check(settings))

    async def run() -> tuple[Rebuilt, int]:
        async with _repositories(settings) as repos:
            with _progress_bar() as show:
                rebuilt = await rebuild_aggregates(
                    repos, datetime.now(UTC), settings.daily_retention_days, on_progress=show
                )
            return rebuilt, await rebuild_shop_days(repos, settings.tracking_rules.shop)

    rebuilt, days = asyncio.run(run())
    for line in change_lines(rebuilt, verbose=verbose):
        typer.echo(line, err=True)
    summary = f"rebuilt {rebuilt.profiles} profiles ({rebuilt.changed} changed) from {rebuilt.events} events"
    summary += f" and {days} shop day rollups"
    if rebuilt.unattributed:
        summary += f"; {rebuilt.unattributed} logged events belong to no profile (erased, or mid-merge)"
    typer.echo(summary, err=True)


def _check(settings: Settings) -> int:
    """``rebuild-aggregates --check``: the differences on stdout, the summary on stderr."""
    rules = settings.check_rules

    async def run() -> Checked:
        async with _repositories(settings) as repos:
            with _progress_bar() as show:
                return await check_aggregates(repos, rules, datetime.now(UTC), on_progress=show)

    checked = asyncio.run(run())
    for line in difference_lines(checked):
        typer.echo(line)
    typer.echo(check_summary(checked), err=True)
    return 1 if checked.differences else 0


@contextlib.contextmanager
def _progress_bar() -> Iterator[Callable[[RebuildProgress], None]]:
    """A bar per stage on stderr; it shows only on a terminal and is gone when done."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        tasks: dict[str, TaskID] = {}

        def show(progress: RebuildProgress) -> None:
            if progress.stage not in tasks:
                tasks[progress.stage] = bar.add_task(progress.stage.value, total=progress.total)
            bar.update(tasks[progress.stage], completed=progress.done, total=progress.total)

        yield show


@app.command()
def report(
    first: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First shop day.")],
    last: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last shop day.")],
    granularity: Annotated[
        Granularity, typer.Option(case_sensitive=False, help="Length of each period.")
    ] = Granularity.MONTH,
    channel: Annotated[Channel | None, typer.Option(help="Only this channel's events.")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write the rows as CSV here.")] = None,
    data_dir: DataDir = None,
) -> None:
    """The shop metrics from --from to --to (days of PROFILEGATE_SHOP_TIME_ZONE; docs/metrics.md)."""
    settings = _settings(data_dir)
    rules = settings.tracking_rules
    try:
        query = MetricsQuery(
            first.date(), last.date(), granularity, channel, rules.shop.churn_days, rules.shop.session_timeout
        )
    except InvalidInput as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(2) from None

    async def run() -> ShopReport:
        async with _repositories(settings) as repos:
            return await shop_metrics(repos, query)

    found = asyncio.run(run())
    currencies = rules.events.currencies
    console = Console()
    if not console.is_terminal:
        console = Console(width=shop_report.PIPED_WIDTH)  # a file or a pipe: no wrapped columns
    console.print(shop_report.table(found, currencies))
    if csv_file is not None:
        with csv_file.open("w", newline="", encoding="utf-8") as out:
            shop_report.write_csv(found, currencies, out)


IMPORT_REJECTED_ROWS = 1  # the import is done; some rows were rejected (listed in the rejects file)
IMPORT_STOPPED = 3  # stopped before the end: --strict met a rejected row, or another run took over


@app.command("import")
def import_command(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="Files to import.")],
    file_format: Annotated[ImportFormat, typer.Option("--format", help="What the files hold.")],
    data_dir: DataDir = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="A Shopify tag and the extension it sets: TAG=EXTENSION.")
    ] = None,
    tag_map: Annotated[
        Path | None, typer.Option(exists=True, help='A JSON object of tags and extensions: {"VIP": "vip"}.')
    ] = None,
    keep_unknown_columns: Annotated[
        bool, typer.Option(help="Keep a customer file's other columns as traits (camelCase names).")
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="CSV of the rejected rows (file, line, reason), written anew by each run "
            "[default: <input>.rejected.csv next to each input].",
        ),
    ] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first rejected row, before its chunk.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Read, parse, validate and group; write nothing.")] = False,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows applied and checkpointed together.")
    ] = CHUNK_ROWS,
    batch_events: Annotated[
        int, typer.Option(min=1, max=MAX_BATCH, help="Events per tracked batch (at most tracking's limit).")
    ] = BATCH_EVENTS,
) -> None:
    """Load a shop's history (events, Shopify orders or customers) exactly once; resumable:
    run the same command again after an interruption. See docs/import.md.

    Exit status: 0 every row imported; 1 done, with rejected rows (listed in the rejects file);
    2 a usage error, a file in the wrong format or an unknown extension (nothing written);
    3 stopped before the end (--strict met a rejected row, or another run took the file over).
    """
    settings = _settings(data_dir)
    customers = CustomerOptions(
        tag_extensions=_tag_extensions(tag or [], tag_map),
        keep_unknown_columns=keep_unknown_columns,
        consent_purposes=settings.consent_purposes,
        phone_region=settings.default_phone_region,
    )
    rules = settings.tracking_rules
    options = ImportOptions(file_format, rules, customers, chunk_rows, batch_events, strict, dry_run)
    with rejects_files(rejects) as rejected, import_progress(Console(stderr=True)) as show:
        try:
            summary = asyncio.run(_import(settings, files, options, rejected.write, show))
        except (ImportStopped, FileTakenOver) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(IMPORT_STOPPED) from None
        except (WrongFormat, DomainError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        rejected.remove_stale(summary)
    typer.echo(import_summary(summary, rejected.written, dry_run=dry_run), err=True)
    if summary.counts.any_rejected:
        raise typer.Exit(IMPORT_REJECTED_ROWS)


def import_feed(repos: Repositories, settings: Settings) -> tuple[SegmentCatalogue, ChangeRecorder]:
    """The segments and the feed an import writes through, cached as the gateway caches them
    (read again after a few seconds, not per batch)."""
    catalogue = SegmentCatalogue(repos, settings.segment_cache_seconds)
    feed = ChangeRecorder(
        repos.changes,
        catalogue,
        ActivePolicy(repos.tier_policies, settings.tier_policy_cache_seconds),
        partner_purpose=settings.partner_consent_purpose,
    )
    return catalogue, feed


async def _import(
    settings: Settings,
    files: list[Path],
    options: ImportOptions,
    rejected: Callable[[RejectedRow], None],
    show: Callable[[ImportProgress], None],
) -> ImportSummary:
    now = datetime.now(UTC)
    async with _repositories(settings) as repos:
        catalogue, feed = import_feed(repos, settings)
        return await import_files(
            repos,
            files,
            options,
            now,
            observer=feed,
            changed=catalogue.follow(now, feed),
            on_rejected=rejected,
            on_progress=show,
        )


def _tag_extensions(pairs: list[str], tag_map: Path | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    if tag_map is not None:
        loaded = orjson.loads(tag_map.read_bytes())
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise typer.BadParameter(
                "must hold a JSON object of tag names and extension names", param_hint="--tag-map"
            )
        mapping.update(loaded)
    for pair in pairs:
        tag_name, separator, extension = pair.partition("=")
        if not separator or not tag_name.strip() or not extension.strip():
            raise typer.BadParameter(f"{pair!r} is not TAG=EXTENSION", param_hint="--tag")
        mapping[tag_name.strip()] = extension.strip()
    return mapping


@app.command("refresh-segments")
def refresh_segments(data_dir: DataDir = None) -> None:
    """Bring segment member records and the extensions segments maintain in line with their
    rules now (the gateway also does this every PROFILEGATE_SEGMENT_REFRESH_SECONDS)."""
    settings = _settings(data_dir)

    async def run() -> int:
        async with _repositories(settings) as repos:
            catalogue = SegmentCatalogue(repos, cache_seconds=0)
            feed = ChangeRecorder(
                repos.changes,
                catalogue,
                ActivePolicy(repos.tier_policies, cache_seconds=0),
                partner_purpose=settings.partner_consent_purpose,
            )
            zone = settings.tracking_rules.shop.zone
            return (await refresh_segment_state(repos, catalogue, datetime.now(UTC), feed, zone=zone)).checked

    typer.echo(f"checked {asyncio.run(run())} members and holders", err=True)


@app.command("export-segment")
def export_segment(
    key: Annotated[str, typer.Argument(help="The segment's key.")],
    purpose: Annotated[str, typer.Option(help="The consent purpose the use needs, e.g. ads.")],
    format: Annotated[ExportFormat, typer.Option("--format", case_sensitive=False)] = ExportFormat.CSV,
    hashed: Annotated[
        bool, typer.Option("--hash", help="SHA-256 of the normalised e-mail and phone, for ads platforms.")
    ] = False,
    output: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Export a segment's members who consented to PURPOSE, as CSV or NDJSON."""
    settings = _settings(data_dir)
    request = AudienceRequest(purpose=purpose, format=format, hashed=hashed)

    async def run() -> int:
        async with _repositories(settings) as repos:
            now = datetime.now(UTC)
            segments = await repos.segments.all()
            segment = next((s for s in segments if s.key == key), None)
            if segment is None:
                raise typer.BadParameter(f"no segment {key!r}", param_hint="KEY")
            total = await audience_size(repos, segment, segments, purpose, now)
            with contextlib.ExitStack() as stack:
                sink = stack.enter_context(output.open("wb")) if output else sys.stdout.buffer
                chunks = export_audience(repos, segment, segments, request, settings.consent_purposes, now)
                return await _write_with_progress(chunks, sink, total, has_header=format is ExportFormat.CSV)

    try:
        written = asyncio.run(run())
    except InvalidInput as error:
        raise typer.BadParameter(error.reason, param_hint=f"--{error.field}") from error
    typer.echo(f"exported {written} profiles of {key}", err=True)


async def _write_with_progress(
    chunks: AsyncIterator[bytes], sink: BinaryIO, total: int, *, has_header: bool
) -> int:
    columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    console = Console(stderr=True)
    written = -1 if has_header else 0
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("export", total=total)
        async for chunk in chunks:
            sink.write(chunk)
            written += 1
            bar.update(task, completed=max(written, 0))
    sink.flush()
    return max(written, 0)


@app.command("export-profile")
def export_profile_command(
    email: Annotated[str | None, typer.Option(help="The person's e-mail address.")] = None,
    profile_id: Annotated[str | None, typer.Option("--id", help="The profile's id.")] = None,
    identity: Annotated[
        str | None, typer.Option(help="TYPE:VALUE, e.g. customerId:C-1001 or phone:+4930123456.")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Export everything held about one person as one JSON document (GDPR art. 15)."""
    settings = _settings(data_dir)
    ref = _profile_ref(email, profile_id, identity, settings.default_phone_region)

    async def run() -> dict[str, object]:
        async with _repositories(settings) as repos:
            return await export_profile(repos, ref, datetime.now(UTC), settings.event_rules.currencies)

    try:
        document = asyncio.run(run())
    except ProfileNotFound as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(2) from None
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    if output is None:
        sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(text)
    typer.echo(f"exported profile {document['profileId']}", err=True)


def _profile_ref(email: str | None, profile_id: str | None, identity: str | None, region: str) -> ProfileRef:
    """The one reference given: ``--email``, ``--id`` or ``--identity TYPE:VALUE``."""
    options = (("email", email), ("id", profile_id), ("identity", identity))
    given = [option for option, value in options if value]
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of --email, --id, --identity")
    if profile_id:
        return ProfileRef(id=profile_id)
    kind, _, value = (f"email:{email}" if email else str(identity)).partition(":")
    types = {t.value.lower(): t for t in IdentityType} | {t.name.lower(): t for t in IdentityType}
    if kind.lower() not in types or not value:
        names = ", ".join(t.value for t in IdentityType)
        raise typer.BadParameter(f"write TYPE:VALUE with TYPE one of {names}", param_hint="--identity")
    try:
        return ProfileRef(identity=normalise_identity(types[kind.lower()], value, phone_region=region))
    except InvalidInput as error:
        raise typer.BadParameter(error.reason, param_hint=f"--{given[0]}") from error


@app.command("export-schema")
def export_schema(
    output: Annotated[Path, typer.Option(help="Where to write the SDL.")] = Path("schema.graphql"),
) -> None:
    """Write the GraphQL schema (SDL) to schema.graphql."""
    output.write_text(schema_sdl())
    typer.echo(f"wrote {output}", err=True)


@app.command("export-access-table")
def export_access_table(
    output: Annotated[
        Path, typer.Option(help="The Markdown file whose table, between its markers, is rewritten.")
    ] = Path("docs/access.md"),
) -> None:
    """Write the table of who may call what (roles, storefront keys with and without a shopper
    proof) into docs/access.md, between its markers; the prose around it is kept."""
    document = output.read_text() if output.exists() else access_table.NEW_DOCUMENT
    output.write_text(access_table.with_table(document, access_table.markdown()))
    typer.echo(f"wrote {output}", err=True)


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(case_sensitive=False, help="What the key may do.")],
    name: Annotated[str, typer.Option(help="Recorded as `by` in provenance.")],
    origin: Annotated[
        list[str] | None,
        typer.Option(help="A browser origin (scheme://host[:port]) that may use the key; repeatable."),
    ] = None,
    persisted_only: Annotated[
        bool, typer.Option("--persisted-only", help="The key may run persisted operations only.")
    ] = False,
    proof_public_key: Annotated[
        Path | None,
        typer.Option(
            help="Storefront keys: the shop's public key (PEM: RSA, P-256 or Ed25519) that signs shopper "
            "proofs, instead of a secret the gateway holds.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    print_as: Annotated[
        KeyOutput,
        typer.Option(
            "--format",
            case_sensitive=False,
            help="text: the key alone on stdout. env: shell `export` lines for `eval`: the key as "
            "<ROLE>_KEY and, for a storefront key, PROFILEGATE_PROOF_SECRET and PROFILEGATE_PROOF_AUDIENCE.",
        ),
    ] = KeyOutput.TEXT,
    data_dir: DataDir = None,
) -> None:
    """Create a key and print it (only the key) on stdout. It cannot be shown again. For a
    storefront key, what the shop's back end needs to sign shopper proofs goes to stderr."""
    settings = _settings(data_dir)
    origins = tuple(origin or ())
    pem = None if proof_public_key is None else proof_public_key.read_text()

    async def run() -> CreatedKey:
        async with _repositories(settings) as repos:
            now = datetime.now(UTC)
            return await create_key(
                repos.api_keys,
                name,
                role,
                now,
                allowed_origins=origins,
                persisted_only=persisted_only,
                proof_public_key=pem,
            )

    try:
        created = asyncio.run(run())
    except InvalidInput as error:
        hint = {"allowedOrigins": "--origin", "proofPublicKey": "--proof-public-key"}.get(
            error.field.split("[")[0], f"--{error.field}"
        )
        raise typer.BadParameter(f"{error.field}: {error.reason}", param_hint=hint) from error
    if print_as is KeyOutput.ENV:
        typer.echo(key_exports(created))
        return
    typer.echo(created.token)
    if created.key.role is Role.STOREFRONT:
        typer.echo(proof_instructions(created.key), err=True)


def key_exports(created: CreatedKey) -> str:
    """Shell lines exporting a new key (and a storefront key's proof secret and audience)."""
    exports = {f"{created.key.role.value.upper()}_KEY": created.token}
    if created.key.role is Role.STOREFRONT:
        if created.key.proof_secret:
            exports["PROFILEGATE_PROOF_SECRET"] = created.key.proof_secret
        exports["PROFILEGATE_PROOF_AUDIENCE"] = created.key.id
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in exports.items())


def proof_instructions(key: ApiKey) -> str:
    """What the shop's back end needs to sign shopper proofs for ``key`` (docs/access.md)."""
    algorithm = key.proof_key.algorithm
    signer = f"secret     {key.proof_secret}" if key.proof_secret else "signed by  the shop's private key"
    return "\n".join(
        [
            "shopper proofs for this key (the shop's back end signs them after login; shown once):",
            f"  algorithm  {algorithm}",
            f"  aud        {key.id}",
            f"  {signer}",
            "  claims     sub (e.g. email:ann@example.com), aud, iat, "
            f"exp (at most {MAX_LIFETIME_SECONDS} s after iat)",
            f"  header     {HEADER_NAME}: <the JWT>",
            "  details    docs/access.md",
        ]
    )


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """List keys: id, role, name, created, revoked."""
    settings = _settings(data_dir)

    async def run() -> None:
        async with _repositories(settings) as repos:
            for key in await repos.api_keys.all():
                revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
                typer.echo(f"{key.id}\t{key.role.value}\t{key.name}\t{key.created_at.isoformat()}\t{revoked}")

    asyncio.run(run())


@keys_app.command("revoke")
def keys_revoke(
    id_or_name: Annotated[str, typer.Argument(help="A key id, or a name (revokes every key so named).")],
    data_dir: DataDir = None,
) -> None:
    """Revoke keys; running gateways stop accepting them within the key cache time."""
    settings = _settings(data_dir)

    async def run() -> int:
        async with _repositories(settings) as repos:
            return len(await repos.api_keys.revoke(id_or_name, datetime.now(UTC)))

    count = asyncio.run(run())
    typer.echo(f"revoked {count} key(s)", err=True)
    if count == 0:
        raise typer.Exit(1)


@destinations_app.command("create")
def destinations_create(
    destination_id: Annotated[str, typer.Option("--id", help="The destination's key: a-z, 0-9, - and _.")],
    name: Annotated[str, typer.Option(help="What the destination is, for people.")],
    url: Annotated[str, typer.Option(help="The https:// endpoint batches are POSTed to.")],
    consent_purpose: Annotated[
        str, typer.Option(help="A profile is sent only while it grants this purpose (e.g. email, ads).")
    ],
    kind: Annotated[
        list[ChangeKind] | None, typer.Option(case_sensitive=False, help="Send every change of this kind.")
    ] = None,
    segment: Annotated[
        list[str] | None, typer.Option(help="Send who enters and leaves this segment; repeatable.")
    ] = None,
    tiers: Annotated[bool, typer.Option("--tiers", help="Send tier changes.")] = False,
    extension: Annotated[
        list[str] | None, typer.Option(help="Send this extension being set or removed; repeatable.")
    ] = None,
    field: Annotated[
        list[str] | None, typer.Option(help="Personal fields sent: identities, traits, traits.<key>.")
    ] = None,
    hash_identifiers: Annotated[
        bool, typer.Option("--hash-identifiers", help="Send SHA-256 of the normalised e-mail and phone.")
    ] = False,
    max_batch: Annotated[int, typer.Option(help="Messages per request.")] = 100,
    max_wait_seconds: Annotated[float, typer.Option(help="Longest a batch waits for more.")] = 1.0,
    rate_per_second: Annotated[float, typer.Option(help="Requests per second at most.")] = 10.0,
    data_dir: DataDir = None,
) -> None:
    """Define a destination, enabled, and print its signing secret once.

    Only the secret goes to stdout; it cannot be shown again (rotate-secret makes a new one).
    """
    settings = _settings(data_dir)
    spec = DestinationSpec(
        id=destination_id,
        name=name,
        url=url,
        selection=Selection(
            kinds=frozenset(kind or ()),
            segments=tuple(segment or ()),
            tiers=tiers,
            extensions=tuple(extension or ()),
        ),
        consent_purpose=consent_purpose,
        fields=tuple(field or ()),
        hash_identifiers=hash_identifiers,
        delivery=Delivery(max_batch, max_wait_seconds, rate_per_second),
    )

    async def run(repos: Repositories) -> WithSecret:
        return await create_destination(repos, spec, settings.destination_rules, datetime.now(UTC))

    created = _on_destinations(settings, run)
    typer.echo(created.secret)
    typer.echo(
        f"destination {spec.id} created, enabled; its signing secret (above) is shown only this once",
        err=True,
    )


@destinations_app.command("list")
def destinations_list(data_dir: DataDir = None) -> None:
    """List destinations: id, state, lag in seconds, changes waiting, URL, name."""
    settings = _settings(data_dir)

    async def run(repos: Repositories) -> list[str]:
        now = datetime.now(UTC)
        return [
            destination_row(found, await destination_lag(repos, found.id, now))
            for found in await repos.destinations.all()
        ]

    for row in _on_destinations(settings, run):
        typer.echo(row)


DestinationId = Annotated[str, typer.Argument(help="The destination's id.")]


@destinations_app.command("show")
def destinations_show(destination_id: DestinationId, data_dir: DataDir = None) -> None:
    """Show a destination: what it is sent, its state, lag and dead letters (never its secret)."""
    settings = _settings(data_dir)

    async def run(repos: Repositories) -> list[str]:
        found = await get_destination(repos, destination_id)
        lag = await destination_lag(repos, destination_id, datetime.now(UTC))
        return list(
            destination_lines(found, lag, await repos.destinations.count_dead_letters(destination_id))
        )

    for line in _on_destinations(settings, run):
        typer.echo(line)


@destinations_app.command("pause")
def destinations_pause(destination_id: DestinationId, data_dir: DataDir = None) -> None:
    """Stop delivering; the destination keeps its place in the feed."""
    settings = _settings(data_dir)

    async def run(repos: Repositories) -> Destination:
        return await pause_destination(repos, destination_id, datetime.now(UTC))

    _on_destinations(settings, run)
    typer.echo(f"destination {destination_id} paused", err=True)


@destinations_app.command("resume")
def destinations_resume(destination_id: DestinationId, data_dir: DataDir = None) -> None:
    """Deliver again (paused or disabled), from where it stopped."""
    settings = _settings(data_dir)

    async def run(repos: Repositories) -> Destination:
        return await resume_destination(repos, destination_id, datetime.now(UTC))

    _on_destinations(settings, run)
    typer.echo(f"destination {destination_id} enabled", err=True)


@destinations_app.command("rotate-secret")
def destinations_rotate_secret(destination_id: DestinationId, data_dir: DataDir = None) -> None:
    """Print a new signing secret once; the previous one keeps signing for a grace period.

    The grace period is PROFILEGATE_DESTINATIONS_SECRET_GRACE_HOURS (24 by default).
    """
    settings = _settings(data_dir)

    async def run(repos: Repositories) -> WithSecret:
        return await rotate_secret(repos, destination_id, settings.destination_rules, datetime.now(UTC))

    rotated = _on_destinations(settings, run)
    typer.echo(rotated.secret)
    until = rotated.destination.secrets.previous_until
    after = f" until {until.isoformat(timespec='seconds')}" if until else ""
    typer.echo(f"requests are signed with the previous secret too{after}", err=True)


@destinations_app.command("delete")
def destinations_delete(destination_id: DestinationId, data_dir: DataDir = None) -> None:
    """Delete a destination with its place in the feed, its dead letters and what it was sent."""
    settings = _settings(data_dir)

    async def run(repos: Repositories) -> None:
        await delete_destination(repos, destination_id)

    _on_destinations(settings, run)
    typer.echo(f"destination {destination_id} deleted", err=True)


@destinations_app.command("resync")
def destinations_resync(destination_id: DestinationId, data_dir: DataDir = None) -> None:
    """Send every current member of the destination's segments again (segment.entered)."""
    settings = _settings(data_dir)

    async def run(repos: Repositories) -> Destination:
        return await resync_destination(repos, destination_id)

    _on_destinations(settings, run)
    typer.echo(f"resync of {destination_id} queued: its deliverer sends it shortly", err=True)


@destinations_app.command("resend")
def destinations_resend(
    destination_id: DestinationId,
    since: Annotated[datetime, typer.Option("--from", help="First moment (UTC unless it names a zone).")],
    until: Annotated[datetime, typer.Option("--to", help="End (exclusive).")],
    data_dir: DataDir = None,
) -> None:
    """Send the changes dated --from to --to again, in new batches under new ids."""
    settings = _settings(data_dir)

    async def run(repos: Repositories) -> Destination:
        return await resend_range(repos, destination_id, _utc(since), _utc(until))

    _on_destinations(settings, run, {"to": "--to"})
    typer.echo(f"resend to {destination_id} queued: its deliverer sends it shortly", err=True)


@destinations_app.command("replay")
def destinations_replay(
    batch_id: Annotated[str, typer.Argument(help="The dead letter's batch id (msg_...).")],
    data_dir: DataDir = None,
) -> None:
    """Send a dead letter again: the same batch id and body, signed anew."""
    settings = _settings(data_dir)

    async def run(repos: Repositories) -> DeadLetter:
        return await replay_dead_letter(repos, batch_id)

    letter = _on_destinations(settings, run)
    typer.echo(
        f"replay of {batch_id} to {letter.destination} queued: its deliverer sends it shortly", err=True
    )


@destinations_app.command("dead-letters")
def destinations_dead_letters(
    destination_id: DestinationId,
    first: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    data_dir: DataDir = None,
) -> None:
    """List the batches given up after the retry schedule, newest first.

    Columns: at, batch id, kind, messages, attempts, last error.
    """
    settings = _settings(data_dir)

    async def run(repos: Repositories) -> list[DeadLetter]:
        await get_destination(repos, destination_id)
        return await repos.destinations.dead_letters(destination_id, first)

    for letter in _on_destinations(settings, run):
        typer.echo(dead_letter_row(letter))


@destinations_app.command("deliveries")
def destinations_deliveries(
    destination_id: DestinationId,
    first: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    data_dir: DataDir = None,
) -> None:
    """Show the delivery log, newest first.

    Columns: at, batch id, kind, status, attempt, status code, latency, messages, error.
    """
    settings = _settings(data_dir)

    async def run(repos: Repositories) -> list[DeliveryRecord]:
        await get_destination(repos, destination_id)
        return await repos.destinations.deliveries(destination_id, first)

    for record in _on_destinations(settings, run):
        typer.echo(delivery_row(record))


def _on_destinations[T](
    settings: Settings,
    work: Callable[[Repositories], Awaitable[T]],
    options: dict[str, str] | None = None,
) -> T:
    """Run ``work`` on the store; an unknown destination or dead letter exits 1, a refused value
    names its option and exits 2."""

    async def run() -> T:
        async with _repositories(settings) as repos:
            return await work(repos)

    try:
        return asyncio.run(run())
    except (DestinationNotFound, DeadLetterNotFound, DestinationExists) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except InvalidInput as error:
        hint = (options or {}).get(error.field) or option_of(error.field)
        raise typer.BadParameter(error.reason, param_hint=hint) from None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@contextlib.asynccontextmanager
async def _repositories(settings: Settings) -> AsyncIterator[Repositories]:
    """The store the gateway would use: MONGODB_URI, the running embedded store, or a new one."""
    with contextlib.ExitStack() as stack:
        uri = settings.mongodb_uri or running_store_uri(settings.data_dir)
        if uri is None:
            store = stack.enter_context(
                EmbeddedStore(data_dir=settings.data_dir, engine=settings.embedded_engine)
            )
            uri = store.uri
        assert uri is not None, "an embedded store has a URI once started"
        client = open_client(uri)
        try:
            yield await prepare(
                client[settings.database],
                settings.layout,
                **settings.store_options,
            )
        finally:
            await client.close()


def main() -> None:
    try:
        app()
    except EmbeddedStoreError as error:
        # An operator's problem (the data directory is in use, the store would not start),
        # not a crash: say what happened instead of printing a traceback.
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(1) from None
    finally:
        # Done: the interpreter's last collection of a large heap (a gateway that served a
        # while, a seed) takes a second or more; frozen objects are left out of it.
        gc.freeze()
