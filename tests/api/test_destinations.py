"""Destinations through GraphQL, delivering to a real receiver on loopback: a shopper entering a
segment reaches it signed within 2 s of the tracking answer, and leaving, withdrawing consent and
erasure reach it as removals; dead letters are seen and replayed; pause and resume."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from profilegate.app import create_app
from profilegate.settings import Settings
from tests.api.test_changes import TRACK, order, ref, refund, view
from tests.api.test_gdpr import ERASE
from tests.api.test_profiles import SET_CONSENT
from tests.destination_receiver import Receiver, receiving
from tests.gateway import FrozenClock, GatewayClient, running

CREATE = """
mutation($input: DestinationInput!) {
  createDestination(input: $input) {
    __typename
    ... on DestinationCreated { secret destination { id state } }
    ... on InvalidInputError { field message }
    ... on DestinationExistsError { id }
  }
}
"""
DESTINATION = """
query($id: String!) {
  destination(id: $id) {
    id state stateReason
    lag { seconds changes }
    deliveries(first: 50) { deliveries { batchId status statusCode attempt latencyMs count } }
    deadLetters { deadLetters { batchId attempts error body } }
  }
}
"""
REPLAY = """
mutation($batchId: String!) {
  replayDeadLetter(batchId: $batchId) {
    __typename
    ... on DeadLetterReplayQueued { deadLetter { batchId } }
    ... on DeadLetterNotFoundError { batchId message }
  }
}
"""
STATE = """
mutation($id: String!) {
  pause: pauseDestination(id: $id) { __typename ... on DestinationChanged { destination { state } } }
}
"""
RESUME = """
mutation($id: String!) {
  resumeDestination(id: $id) { __typename ... on DestinationChanged { destination { state } } }
}
"""
METRICS_TOKEN = "scrape-destinations"
SEGMENT = {"key": "big-spenders", "name": "Big spenders", "rule": "net_spend(last 365d) >= 250.00"}


def destination_input(receiver: Receiver, **changes: Any) -> dict[str, Any]:
    return {
        "id": "ads-big-spenders",
        "name": "Ads: big spenders",
        "url": receiver.url,
        "send": {"segments": ["big-spenders"]},
        "consentPurpose": "ads",
        "hashIdentifiers": True,
        "maxWaitSeconds": 0.05,
        **changes,
    }


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "destinations_allow_private": True,
            "destinations_refresh_seconds": 0.1,
            "destinations_retry_first_seconds": 0.05,
            "destinations_retry_max_seconds": 0.1,
            "destinations_retry_for_seconds": 0.5,
            "destinations_pause_after_dead_letters": 10,
            "feed_poll_seconds": 0.1,
            "metrics_token": SecretStr(METRICS_TOKEN),
        }
    )


@pytest.fixture
async def gateway(fast: Settings, clock: FrozenClock) -> AsyncIterator[GatewayClient]:
    async with running(create_app(fast, clock=clock)) as http:
        yield GatewayClient(http)


async def track(gateway: GatewayClient, *events: dict[str, Any]) -> None:
    result = (await gateway.execute(TRACK, {"events": list(events)})).data["track"]
    assert result["accepted"] == len(events), result


async def consent(gateway: GatewayClient, who: str, granted: bool) -> None:
    given = {"purpose": "ads", "granted": granted, "source": "cookie-banner"}
    result = await gateway.execute(SET_CONSENT, {"ref": ref(who), "consent": given})
    assert result.data["setConsent"]["__typename"] == "ConsentSet", result.body


async def create(gateway: GatewayClient, receiver: Receiver, **changes: Any) -> None:
    result = await gateway.execute(CREATE, {"input": destination_input(receiver, **changes)})
    created = result.data["createDestination"]
    assert created["__typename"] == "DestinationCreated", created
    assert created["secret"].startswith("whsec_")
    receiver.secrets.append(created["secret"])


async def arrived(receiver: Receiver, count: int) -> list[dict[str, Any]]:
    return await asyncio.to_thread(receiver.wait_for, count)


async def test_a_shopper_entering_a_segment_reaches_its_destination_signed_within_2_s(
    gateway: GatewayClient,
) -> None:
    saved = await gateway.execute(
        "mutation($i: SaveSegmentInput!) { saveSegment(input: $i) { __typename } }", {"i": SEGMENT}
    )
    assert saved.data["saveSegment"]["__typename"] == "SegmentSaved"
    with receiving() as receiver:
        await create(gateway, receiver)
        await track(gateway, view("v-ann", "ann@example.com"), view("v-bob", "bob@example.com"))
        await consent(gateway, "ann@example.com", True)
        await consent(gateway, "bob@example.com", True)

        await track(gateway, order("o1", "ann@example.com", "300.00"))
        answered = time.monotonic()
        entered = await arrived(receiver, 1)
        delay = receiver.delivered()[0].at - answered

        await track(gateway, refund("r1", "ann@example.com", "o1", "100.00"))
        left = (await arrived(receiver, 2))[1]
        await track(
            gateway, order("o2", "ann@example.com", "300.00"), order("o3", "bob@example.com", "400.00")
        )
        await arrived(receiver, 4)
        await consent(gateway, "ann@example.com", False)
        withdrawn = (await arrived(receiver, 6))[4:]
        erased = await gateway.execute(ERASE, {"ref": ref("bob@example.com"), "reason": "art. 17"})
        assert erased.data["eraseProfile"]["__typename"] == "ProfileErased"
        removed = (await arrived(receiver, 8))[6:]

    assert delay < 2.0, delay
    assert all(one.verified for one in receiver.received)
    assert entered[0]["type"] == "segment.entered"
    assert entered[0]["segment"] == "big-spenders"
    assert len(entered[0]["hashedIdentifiers"]["email"][0]) == 64
    assert "ann@example.com" not in receiver.received[0].body.decode()
    assert (left["type"], left["profileId"]) == ("segment.left", entered[0]["profileId"])
    assert [(m["type"], m["reason"]) for m in withdrawn] == [
        ("segment.left", "consent_withdrawn"),
        ("profile.removed", "consent_withdrawn"),
    ]
    assert [(m["type"], m["reason"]) for m in removed] == [
        ("segment.left", "erased"),
        ("profile.removed", "erased"),
    ]
    assert removed[1]["hashedIdentifiers"]["email"], "the removal names the hashed identifiers sent before"
    assert "bob" not in receiver.delivered()[-1].body.decode()


async def test_a_dead_letter_is_seen_and_replayed_through_the_api(gateway: GatewayClient) -> None:
    receiver = Receiver(default="fail")
    with receiving(receiver):
        await create(gateway, receiver, send={"tiers": True, "kinds": ["PROFILE_UPDATED"]})
        await track(gateway, view("v-ann", "ann@example.com"))
        await consent(gateway, "ann@example.com", True)
        upsert = (
            'mutation($ref: ProfileRef!) { upsertProfile(input: {ref: $ref, traits: {country: "DE"}}) '
            "{ __typename } }"
        )
        assert (await gateway.execute(upsert, {"ref": ref("ann@example.com")})).data

        deadline = time.monotonic() + 10
        letters: list[dict[str, Any]] = []
        while not letters and time.monotonic() < deadline:
            found = (await gateway.execute(DESTINATION, {"id": "ads-big-spenders"})).data["destination"]
            letters = found["deadLetters"]["deadLetters"]
            await asyncio.sleep(0.05)
        assert letters, "the batch became a dead letter"
        receiver.default = "ok"
        replayed = await gateway.execute(REPLAY, {"batchId": letters[0]["batchId"]})
        assert replayed.data["replayDeadLetter"]["__typename"] == "DeadLetterReplayQueued"
        messages = await arrived(receiver, 1)
        unknown = await gateway.execute(REPLAY, {"batchId": "msg_none"})

    assert receiver.delivered()[0].batch_id == letters[0]["batchId"]
    assert messages[0]["type"] == "profile.updated"
    assert unknown.data["replayDeadLetter"]["__typename"] == "DeadLetterNotFoundError"
    found = (await gateway.execute(DESTINATION, {"id": "ads-big-spenders"})).data["destination"]
    metrics = await gateway.http.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert (
        'profilegate_destination_deliveries_total{code="500",destination="ads-big-spenders",status="failed"}'
        in (metrics.text)
    )
    assert 'profilegate_destination_dead_letters_total{destination="ads-big-spenders"}' in metrics.text
    assert 'profilegate_destination_lag_changes{destination="ads-big-spenders"}' in metrics.text
    statuses = {line["status"] for line in found["deliveries"]["deliveries"]}
    assert {"failed", "dead_lettered", "delivered"} <= statuses
    assert found["lag"] == {"seconds": 0.0, "changes": 0} or found["lag"]["changes"] >= 0


async def test_a_paused_destination_resumes_where_it_stopped(gateway: GatewayClient) -> None:
    with receiving() as receiver:
        await track(gateway, view("v0", "ann@example.com"))
        await consent(gateway, "ann@example.com", True)
        await create(gateway, receiver, send={"kinds": ["EVENT_TRACKED"]})
        await track(gateway, view("v1", "ann@example.com"))
        await arrived(receiver, 1)
        paused = await gateway.execute(STATE, {"id": "ads-big-spenders"})
        assert paused.data["pause"]["destination"]["state"] == "PAUSED"
        await asyncio.sleep(0.3)
        await track(gateway, view("v2", "ann@example.com"), view("v3", "ann@example.com"))
        await asyncio.sleep(0.5)
        assert len(receiver.messages()) == 1
        lag = (await gateway.execute(DESTINATION, {"id": "ads-big-spenders"})).data["destination"]["lag"]
        resumed = await gateway.execute(RESUME, {"id": "ads-big-spenders"})
        assert resumed.data["resumeDestination"]["destination"]["state"] == "ENABLED"
        messages = await arrived(receiver, 3)
    assert [m["event"]["eventId"] for m in messages] == ["v1", "v2", "v3"]
    assert lag["changes"] >= 2


async def test_a_destination_is_refused_in_the_products_words(gateway: GatewayClient, fast: Settings) -> None:
    with receiving() as receiver:
        cases: dict[str, dict[str, Any]] = {
            "input.url": {"url": "ftp://example.com/x"},
            "input.maxBatch": {"maxBatch": 501},
            "input.send": {"send": {}},
            "input.consentPurpose": {"consentPurpose": "astrology"},
            "input.fields[0]": {"fields": ["aggregates"]},
            "input.id": {"id": "Has Spaces"},
        }
        answers = {
            field: (await gateway.execute(CREATE, {"input": destination_input(receiver, **changes)})).data[
                "createDestination"
            ]
            for field, changes in cases.items()
        }
        await create(gateway, receiver)
        again = await gateway.execute(CREATE, {"input": destination_input(receiver)})
        audited = await gateway.execute(
            '{ auditLog(filter: {action: "createDestination"}) { entries { outcome arguments } } }'
        )
    for field, answer in answers.items():
        assert answer["__typename"] == "InvalidInputError", (field, answer)
        assert answer["field"] == field, answer
        assert answer["message"].startswith(f"{field}: "), answer
    assert again.data["createDestination"] == {
        "__typename": "DestinationExistsError",
        "id": "ads-big-spenders",
    }
    outcomes = [entry["outcome"] for entry in audited.data["auditLog"]["entries"]]
    assert outcomes[:2] == ["DestinationExistsError", "DestinationCreated"]
    assert "InvalidInputError" in outcomes
