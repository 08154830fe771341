"""Opens the client and builds every repository over one database."""

from collections.abc import Sequence
from dataclasses import dataclass

import pymongo
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener
from pymongo.write_concern import WriteConcern

from profilegate.storage.api_keys import ApiKeyRepository
from profilegate.storage.audit import AuditLog, audit_log
from profilegate.storage.changes import ChangeLog, change_log
from profilegate.storage.coupons import CouponRepository
from profilegate.storage.destinations import (
    DEFAULT_DELIVERY_RETENTION_SECONDS,
    DestinationRepository,
    delivery_log,
)
from profilegate.storage.documents import Database, Document
from profilegate.storage.events import EventLog, event_log
from profilegate.storage.extension_definitions import ExtensionDefinitionRepository
from profilegate.storage.identity_keys import IdentityKeyRepository
from profilegate.storage.import_checkpoints import ImportCheckpointRepository
from profilegate.storage.indexes import ensure_indexes, ensure_segment_indexes
from profilegate.storage.layout import Layout, LayoutKind, load_layout
from profilegate.storage.merges import MergeLog
from profilegate.storage.persisted_operations import PersistedOperationRepository
from profilegate.storage.profiles import ProfileRepository
from profilegate.storage.segment_members import SegmentMemberRepository
from profilegate.storage.segment_sizes import SegmentSizeRepository
from profilegate.storage.segments import SegmentRepository
from profilegate.storage.shop_days import ShopDayRepository
from profilegate.storage.tier_policies import TierPolicyRepository
from profilegate.storage.tombstones import TombstoneRepository


@dataclass(frozen=True)
class Repositories:
    profiles: ProfileRepository
    identity_keys: IdentityKeyRepository
    extension_definitions: ExtensionDefinitionRepository
    api_keys: ApiKeyRepository
    events: EventLog
    merges: MergeLog
    tier_policies: TierPolicyRepository
    segments: SegmentRepository
    changes: ChangeLog
    tombstones: TombstoneRepository
    audit: AuditLog
    persisted_operations: PersistedOperationRepository
    segment_members: SegmentMemberRepository
    coupons: CouponRepository
    shop_days: ShopDayRepository
    segment_sizes: SegmentSizeRepository
    import_checkpoints: ImportCheckpointRepository
    destinations: DestinationRepository


def open_client(uri: str, *, listeners: Sequence[CommandListener] = ()) -> AsyncMongoClient[Document]:
    """A client that returns UTC-aware datetimes; it connects lazily.

    ``listeners``: pymongo command listeners, e.g. a ``CommandTimer`` for store latency.
    """
    return AsyncMongoClient(uri, tz_aware=True, appname="profilegate", event_listeners=list(listeners))


async def close_client(client: AsyncMongoClient[Document], *, within: float) -> None:
    """Close the client, waiting at most about ``within`` seconds for the store.

    Closing ends the client's server sessions with an ``endSessions`` command, which first
    selects a server: against a store that is gone that waits the whole server selection
    timeout (30 s by default). The operation timeout caps that wait, and the driver ignores
    a failed ``endSessions``
    (https://www.mongodb.com/docs/manual/reference/command/endSessions/).
    """
    with pymongo.timeout(within):
        await client.close()


async def ping(database: Database) -> None:
    await database.command("ping")


DEFAULT_EVENT_RETENTION_SECONDS = 1130 * 86_400
DEFAULT_CHANGE_RETENTION_SECONDS = 7 * 86_400
DEFAULT_TOMBSTONE_RETENTION_SECONDS = 1095 * 86_400
DEFAULT_AUDIT_RETENTION_SECONDS = 400 * 86_400
# An acknowledged event is on a majority of the replica set, in its journal:
# https://www.mongodb.com/docs/manual/reference/write-concern/
DEFAULT_EVENT_WRITE = "majority"


async def prepare(
    database: Database,
    wanted: Layout,
    *,
    explicit: bool = False,
    event_retention_seconds: int = DEFAULT_EVENT_RETENTION_SECONDS,
    change_retention_seconds: int = DEFAULT_CHANGE_RETENTION_SECONDS,
    tombstone_retention_seconds: int = DEFAULT_TOMBSTONE_RETENTION_SECONDS,
    audit_retention_seconds: int = DEFAULT_AUDIT_RETENTION_SECONDS,
    delivery_retention_seconds: int = DEFAULT_DELIVERY_RETENTION_SECONDS,
    event_write: str = DEFAULT_EVENT_WRITE,
    event_journal: bool = True,
    segment_indexes: bool = False,
) -> Repositories:
    """Create indexes, read (or fix) the layout, apply changed retentions and build the
    repositories. ``explicit``: ``wanted`` was asked for, and must be the stored layout.
    ``event_write``: members that must have an event ("majority" or a number) before it is
    acknowledged, ``event_journal``: in their journal."""
    await ensure_indexes(database)
    layout = await load_layout(database, wanted, explicit=explicit)
    if segment_indexes:
        await ensure_segment_indexes(layout.partitioned(database, "profiles"))
    repos = Repositories(
        profiles=ProfileRepository(
            layout.partitioned(database, "profiles"),
            layout.partitioned(database, "profile_checkout"),
            layout.partitioned(database, "identity_keys"),
        ),
        identity_keys=IdentityKeyRepository(
            layout.partitioned(database, "identity_keys"),
            layout.partitioned(database, "profiles"),
            layout.partitioned(database, "tombstones"),
        ),
        extension_definitions=ExtensionDefinitionRepository(database["extension_definitions"]),
        api_keys=ApiKeyRepository(database["api_keys"]),
        merges=MergeLog(database["merges"]),
        tier_policies=TierPolicyRepository(database),
        segments=SegmentRepository(database),
        events=event_log(
            layout, database, event_retention_seconds, write_concern(event_write, event_journal)
        ),
        changes=change_log(layout, database, change_retention_seconds),
        tombstones=TombstoneRepository(
            layout.partitioned(database, "tombstones"), tombstone_retention_seconds
        ),
        audit=audit_log(layout, database, audit_retention_seconds),
        persisted_operations=PersistedOperationRepository(database["persisted_operations"]),
        segment_members=SegmentMemberRepository(
            layout.partitioned(database, "segment_members"), database["meta"]
        ),
        coupons=CouponRepository(layout.partitioned(database, "coupons"), database["coupon_campaigns"]),
        shop_days=ShopDayRepository(database["shop_days"]),
        segment_sizes=SegmentSizeRepository(database["segment_sizes"]),
        import_checkpoints=ImportCheckpointRepository(
            database["import_checkpoints"], database["import_rejections"]
        ),
        destinations=DestinationRepository(
            database, delivery_log(layout, database, delivery_retention_seconds)
        ),
    )
    if layout.kind is LayoutKind.MONGODB:
        await repos.segment_members.hold_indexes()
        await repos.coupons.hold_indexes()
    for kept in (repos.events, repos.changes, repos.tombstones, repos.audit, repos.destinations):
        await kept.hold_retention()
    return repos


def write_concern(members: str, journal: bool) -> WriteConcern:
    """``members``: "majority" or how many members must have the write; ``journal``: in their journal."""
    return WriteConcern(w=members if members == "majority" else int(members), j=journal)
