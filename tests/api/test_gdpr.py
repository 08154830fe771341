"""exportProfile and eraseProfile through GraphQL: what is exported, what is left after an
erasure, replays refused, erasing twice, and the erasure's audit entry."""

from typing import Any

from profilegate.storage.documents import Database
from tests.gateway import FrozenClock, GatewayClient

ANN = "ann@example.com"
REF = {"identity": {"type": "EMAIL", "value": ANN}}
TRACK = """
mutation Track($events: [EventInput!]!) {
  track(events: $events) { accepted rejected results { id status reason } }
}
"""
UPSERT = """
mutation Upsert($input: UpsertProfileInput!) {
  upsertProfile(input: $input) { __typename ... on ProfileUpserted { profile { id } } }
}
"""
EXPORT = """
query Export($ref: ProfileRef!) {
  exportProfile(ref: $ref) {
    __typename
    ... on ProfileExport { profileId document }
    ... on ProfileNotFoundError { ref }
  }
}
"""
ERASE = """
mutation Erase($ref: ProfileRef!, $reason: String!) {
  eraseProfile(ref: $ref, reason: $reason) {
    __typename
    ... on ProfileErased { profileId alreadyErased profiles identities events merges changes erasedAt }
    ... on ProfileNotFoundError { ref }
    ... on InvalidInputError { field message }
  }
}
"""
AUDIT = """
query Audit($filter: AuditFilterInput) {
  auditLog(filter: $filter) { entries { action profileId outcome arguments actor { name role } } }
}
"""


def order(event_id: str, order_id: str, total: str = "25.00") -> dict[str, Any]:
    return {
        "id": event_id,
        "at": "2026-11-20T09:00:00Z",
        "channel": "WEB",
        "ref": REF,
        "payload": {
            "orderCompleted": {
                "orderId": order_id,
                "total": total,
                "currency": "EUR",
                "items": [{"sku": "A1", "category": "shoes", "price": total, "quantity": 1}],
            }
        },
    }


async def ann_with_history(gateway: GatewayClient) -> str:
    tracked = await gateway.execute(TRACK, {"events": [order("e1", "o1"), order("e2", "o2", "10.00")]})
    assert tracked.data["track"]["accepted"] == 2
    upserted = await gateway.execute(
        UPSERT,
        {
            "input": {
                "ref": REF,
                "traits": {"firstName": "Ann", "city": "Bonn"},
                "consents": [{"purpose": "partner_sharing", "granted": True, "source": "account"}],
            }
        },
    )
    profile_id = upserted.data["upsertProfile"]["profile"]["id"]
    assert isinstance(profile_id, str)
    return profile_id


async def collections_holding(database: Database, needle: str) -> list[str]:
    found = []
    for name in sorted(await database.list_collection_names()):
        async for document in database[name].find({}):
            if needle in repr(document):
                found.append(name)
                break
    return found


async def test_the_export_holds_what_was_tracked_and_set(gateway: GatewayClient) -> None:
    profile_id = await ann_with_history(gateway)

    exported = (await gateway.execute(EXPORT, {"ref": REF})).data["exportProfile"]

    assert exported["profileId"] == profile_id
    document = exported["document"]
    assert document["profile"]["traits"] == {"firstName": "Ann", "city": "Bonn"}
    assert document["profile"]["identities"] == [{"type": "email", "value": ANN}]
    assert document["profile"]["consents"]["partner_sharing"]["granted"] is True
    assert document["profile"]["aggregates"]["netSpend"] == "35.00"
    assert sorted(event["id"] for event in document["events"]) == ["e1", "e2"]
    assert {"PROFILE_CREATED", "EVENT_TRACKED", "CONSENT_CHANGED"} <= {c["kind"] for c in document["changes"]}
    unknown = await gateway.execute(EXPORT, {"ref": {"id": "nobody"}})
    assert unknown.data["exportProfile"]["__typename"] == "ProfileNotFoundError"


async def test_after_erasure_nothing_holds_the_person_and_replays_are_refused(
    gateway: GatewayClient, database: Database, clock: FrozenClock
) -> None:
    profile_id = await ann_with_history(gateway)

    erased = (await gateway.execute(ERASE, {"ref": REF, "reason": "art. 17 request 4711"})).data

    assert erased["eraseProfile"] | {"erasedAt": None, "changes": None} == {
        "__typename": "ProfileErased",
        "profileId": profile_id,
        "alreadyErased": False,
        "profiles": 1,
        "identities": 1,
        "events": 2,
        "merges": 0,
        "changes": None,
        "erasedAt": None,
    }
    assert await collections_holding(database, ANN) == []
    assert await collections_holding(database, "Bonn") == []
    holding_id = await collections_holding(database, profile_id)
    assert all(name.startswith(("audit", "changes")) for name in holding_id), holding_id

    clock.advance(minutes=5)
    replay = [order("e1", "o1"), order("e3", "o3")]
    refused = (await gateway.execute(TRACK, {"events": replay})).data["track"]
    assert (refused["accepted"], refused["rejected"]) == (0, 2)
    assert all("the person was erased" in result["reason"] for result in refused["results"])
    recreate = await gateway.execute(UPSERT, {"input": {"ref": REF}})
    assert recreate.data["upsertProfile"]["__typename"] == "InvalidInputError"
    assert await collections_holding(database, ANN) == []


async def test_erasing_twice_answers_erased(gateway: GatewayClient) -> None:
    profile_id = await ann_with_history(gateway)
    first = (await gateway.execute(ERASE, {"ref": REF, "reason": "request"})).data["eraseProfile"]

    again = (await gateway.execute(ERASE, {"ref": REF, "reason": "request"})).data["eraseProfile"]
    by_id = (await gateway.execute(ERASE, {"ref": {"id": profile_id}, "reason": "request"})).data

    assert (again["alreadyErased"], again["profileId"], again["erasedAt"]) == (True, None, first["erasedAt"])
    assert (again["events"], again["profiles"]) == (0, 0)
    assert by_id["eraseProfile"]["profileId"] == profile_id
    unknown = await gateway.execute(ERASE, {"ref": {"id": "nobody"}, "reason": "request"})
    assert unknown.data["eraseProfile"]["__typename"] == "ProfileNotFoundError"
    blank = await gateway.execute(ERASE, {"ref": REF, "reason": " "})
    assert blank.data["eraseProfile"]["field"] == "reason"


async def test_the_erasure_is_audited_by_profile_id_without_the_identity(gateway: GatewayClient) -> None:
    profile_id = await ann_with_history(gateway)
    await gateway.execute(ERASE, {"ref": REF, "reason": "request"})

    entries = (await gateway.execute(AUDIT, {"filter": {"action": "eraseProfile"}})).data["auditLog"][
        "entries"
    ]

    assert len(entries) == 1
    assert entries[0]["profileId"] == profile_id
    assert entries[0]["outcome"] == "ProfileErased"
    assert entries[0]["arguments"]["reason"] == "request"
    assert ANN not in repr(entries)
