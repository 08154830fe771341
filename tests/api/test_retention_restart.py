"""Retention settings changed between restarts: the TTL indexes follow, every write still works;
a retention a TTL index cannot hold stops start-up naming the setting."""

import pytest
from pydantic import ValidationError

from profilegate.app import create_app
from profilegate.settings import Settings
from profilegate.storage.documents import Database
from profilegate.storage.store import open_client
from tests.gateway import FrozenClock, GatewayClient, running

TRACK = """
mutation Track($events: [EventInput!]!) { track(events: $events) { accepted rejected } }
"""
UPSERT = """
mutation Upsert($input: UpsertProfileInput!) {
  upsertProfile(input: $input) { __typename }
}
"""
ERASE = """
mutation Erase($ref: ProfileRef!) { eraseProfile(ref: $ref, reason: "request") { __typename } }
"""
CHANGED = {
    "event_retention_days": 30,
    "change_retention_days": 2,
    "tombstone_retention_days": 60,
    "audit_retention_days": 90,
}
TTL_OF = {"events": "event", "changes": "change", "tombstones": "tombstone", "audit": "audit"}


def ref(email: str) -> dict[str, object]:
    return {"identity": {"type": "EMAIL", "value": email}}


def viewed(event_id: str, email: str) -> dict[str, object]:
    return {
        "id": event_id,
        "at": "2026-11-20T09:00:00Z",
        "channel": "WEB",
        "ref": ref(email),
        "payload": {"productView": {"sku": "A1", "category": "shoes"}},
    }


async def use_every_log(gateway: GatewayClient, email: str) -> list[str]:
    """Track, upsert and erase (events, change feed, audit, tombstones); the outcomes."""
    tracked = (await gateway.execute(TRACK, {"events": [viewed(f"{email}-1", email)]})).data["track"]
    upserted = await gateway.execute(UPSERT, {"input": {"ref": ref(f"other-{email}")}})
    erased = await gateway.execute(ERASE, {"ref": ref(email)})
    return [
        f"accepted {tracked['accepted']}",
        upserted.data["upsertProfile"]["__typename"],
        erased.data["eraseProfile"]["__typename"],
    ]


async def retention_ttls(database: Database) -> dict[str, set[int]]:
    """The expireAfterSeconds of every ``retention`` index, by log (segments and partitions together)."""
    found: dict[str, set[int]] = {}
    for name in await database.list_collection_names():
        index = (await database[name].index_information()).get("retention")
        if index is not None:
            found.setdefault(name.split("_")[0], set()).add(int(index["expireAfterSeconds"]))
    return found


async def test_a_restart_with_every_retention_changed_keeps_writing_and_moves_the_ttls(
    settings: Settings, clock: FrozenClock, store_uri: str
) -> None:
    async with running(create_app(settings, clock=clock)) as http:
        before = await use_every_log(GatewayClient(http), "ann@example.com")
    changed = settings.model_copy(update=CHANGED)
    async with running(create_app(changed, clock=clock)) as http:
        after = await use_every_log(GatewayClient(http), "bob@example.com")

    client = open_client(store_uri)
    try:
        ttls = await retention_ttls(client[settings.database])
        await client.drop_database(settings.database)
    finally:
        await client.close()
    assert before == after == ["accepted 1", "ProfileUpserted", "ProfileErased"]
    assert {"events", "tombstones", "audit"} <= set(ttls)
    for log, ttl in ttls.items():
        assert ttl == {CHANGED[f"{TTL_OF[log]}_retention_days"] * 86_400}, log


@pytest.mark.parametrize("setting", sorted(CHANGED))
def test_a_retention_past_a_ttl_index_s_range_is_refused_naming_the_setting(
    setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"PROFILEGATE_{setting.upper()}", "24856")  # days: more than 2**31 - 1 s
    with pytest.raises(ValidationError) as refused:
        Settings()

    message = str(refused.value)
    assert f"PROFILEGATE_{setting.upper()}=24856" in message
    assert "2147483647" in message


def test_the_longest_retention_a_ttl_index_holds_is_accepted() -> None:
    assert Settings(mongodb_uri=None, event_retention_days=24_855).event_retention_days == 24_855
