"""Opens the client and builds every repository over one database."""

from collections.abc import Sequence
from dataclasses import dataclass

import pymongo
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from profilegate.storage.api_keys import ApiKeyRepository
from profilegate.storage.audit import AuditLog
from profilegate.storage.changes import ChangeLog
from profilegate.storage.documents import Database, Document
from profilegate.storage.events import EventLog
from profilegate.storage.extension_definitions import ExtensionDefinitionRepository
from profilegate.storage.identity_keys import IdentityKeyRepository
from profilegate.storage.indexes import ensure_indexes, ensure_segment_indexes
from profilegate.storage.layout import Layout, load_layout
from profilegate.storage.merges import MergeLog
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.persisted_operations import PersistedOperationRepository
from profilegate.storage.profiles import ProfileRepository
from profilegate.storage.segments import SegmentRepository
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


async def prepare(
    database: Database,
    wanted: Layout,
    *,
    event_retention_seconds: int = DEFAULT_EVENT_RETENTION_SECONDS,
    change_retention_seconds: int = DEFAULT_CHANGE_RETENTION_SECONDS,
    tombstone_retention_seconds: int = DEFAULT_TOMBSTONE_RETENTION_SECONDS,
    audit_retention_seconds: int = DEFAULT_AUDIT_RETENTION_SECONDS,
    segment_indexes: bool = False,
) -> Repositories:
    """Create indexes, read (or fix) the layout and build the repositories."""
    await ensure_indexes(database)
    layout = await load_layout(database, wanted)
    count = layout.partitions
    if segment_indexes:
        await ensure_segment_indexes(PartitionedCollection(database, "profiles", count))
    return Repositories(
        profiles=ProfileRepository(
            PartitionedCollection(database, "profiles", count),
            PartitionedCollection(database, "profile_checkout", count),
        ),
        identity_keys=IdentityKeyRepository(PartitionedCollection(database, "identity_keys", count)),
        extension_definitions=ExtensionDefinitionRepository(database["extension_definitions"]),
        api_keys=ApiKeyRepository(database["api_keys"]),
        merges=MergeLog(database["merges"]),
        tier_policies=TierPolicyRepository(database),
        segments=SegmentRepository(database),
        events=EventLog(database, layout.event_segment_size, event_retention_seconds),
        changes=ChangeLog(database, layout.event_segment_size, change_retention_seconds),
        tombstones=TombstoneRepository(
            PartitionedCollection(database, "tombstones", count), tombstone_retention_seconds
        ),
        audit=AuditLog(database, layout.event_segment_size, audit_retention_seconds),
        persisted_operations=PersistedOperationRepository(database["persisted_operations"]),
    )
