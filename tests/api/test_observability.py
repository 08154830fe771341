"""Observability: the /metrics series after real traffic, request ids in headers and JSON log
lines, and readiness reporting the store and the change feed."""

import asyncio
import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from profilegate.api.prometheus import MAX_OPERATION_NAMES, OTHER, BoundedNames
from profilegate.app import create_app
from profilegate.logs import UVICORN_LOGGERS, log_config
from profilegate.settings import Settings
from profilegate.storage.documents import Database
from tests.feed_client import FeedSocket, serving
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient, running

SCRAPE_TOKEN = "scrape-token"
SCRAPE = {"authorization": f"Bearer {SCRAPE_TOKEN}"}
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
VIEWER = "query WhoAmI { viewer { name role } }"
TRACK = "mutation Track($events: [EventInput!]!) { track(events: $events) { accepted } }"
MISSING_POLICY = "mutation Activate { activateTierPolicy(version: 999) { __typename } }"
INVALID = "query Broken { noSuchField }"
DEFINITIONS = "query Definitions { extensionDefinitions { name } }"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def page_view(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "page_view",
        "at": "2026-11-20T09:00:00Z",
        "channel": "web",
        "anonymousId": "visitor-1",
    }


BATCH = {
    "events": [
        page_view("pv-1"),
        page_view("pv-2"),
        page_view("pv-1"),  # the same id again: a duplicate
        {**page_view("pv-3"), "type": "no_such_event"},  # rejected
    ]
}
GRAPHQL_EVENT = {
    "at": "2026-11-20T09:05:00Z",
    "channel": "WEB",
    "anonymousId": "visitor-2",
    "payload": {"pageView": {"url": "/"}},
}


@pytest.fixture
def scraped(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": SecretStr(SCRAPE_TOKEN)})


async def scrape(client: GatewayClient) -> Samples:
    response = await client.http.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def store_commands(samples: Samples) -> dict[str, float]:
    return {
        dict(labels)["command"]: count
        for (name, labels), count in samples.items()
        if name == "profilegate_store_command_duration_seconds_count"
    }


async def test_metrics_expose_every_series_after_real_traffic(scraped: Settings, clock: FrozenClock) -> None:
    async with serving(create_app(scraped, clock=clock)) as (base, client):
        before = await scrape(client)
        tracked = (await client.http.post("/v1/track", json=BATCH, headers=ADMIN)).json()
        assert (tracked["accepted"], tracked["duplicates"], tracked["rejected"]) == (2, 1, 1)
        assert (await client.execute(TRACK, {"events": [GRAPHQL_EVENT]})).data["track"]["accepted"] == 1
        assert (await client.execute(VIEWER)).data["viewer"]["role"] == "ADMIN"
        assert (await client.execute(MISSING_POLICY)).data["activateTierPolicy"]["__typename"] == (
            "TierPolicyNotFoundError"
        )
        assert (await client.execute(INVALID)).status == 200
        assert (await client.execute(VIEWER, key=None)).status == 401
        async with FeedSocket.open(base) as socket:
            await socket.subscribe()
            after = await scrape(client)

    histogram = "profilegate_graphql_request_duration_seconds"
    assert grew(before, after, f"{histogram}_count", operation="WhoAmI", role="admin") == 1
    assert grew(before, after, f"{histogram}_count", operation="Track", role="admin") == 1
    assert grew(before, after, f"{histogram}_bucket", operation="WhoAmI", role="admin", le="+Inf") == 1
    assert value(after, f"{histogram}_sum", operation="WhoAmI", role="admin") > 0
    route = {"route": "/v1/track", "method": "POST", "role": "admin"}
    assert grew(before, after, "profilegate_http_request_duration_seconds_count", **route) == 1

    assert grew(before, after, "profilegate_events_total", status="accepted", via="http") == 2
    assert grew(before, after, "profilegate_events_total", status="duplicate", via="http") == 1
    assert grew(before, after, "profilegate_events_total", status="rejected", via="http") == 1
    assert grew(before, after, "profilegate_events_total", status="accepted", via="graphql") == 1

    errors = "profilegate_errors_total"
    assert grew(before, after, errors, source="graphql", kind="GRAPHQL_VALIDATION_FAILED") == 1
    assert grew(before, after, errors, source="result", kind="TierPolicyNotFoundError") == 1
    assert grew(before, after, errors, source="http", kind="401") == 1

    assert value(after, "profilegate_subscriptions_open") == 1
    assert value(after, "profilegate_feed_lag_places") >= 0
    assert value(after, "profilegate_feed_seconds_since_last_change") >= 0
    commands = store_commands(after)
    assert {"find", "update"} <= commands.keys(), commands
    assert commands["find"] > store_commands(before).get("find", 0)


async def test_metrics_are_served_only_to_the_scrape_token(settings: Settings, scraped: Settings) -> None:
    async with running(create_app(settings)) as http:
        unset = await http.get("/metrics", headers=SCRAPE)
        assert unset.status_code == 404
        assert "PROFILEGATE_METRICS_TOKEN" in unset.json()["errors"][0]["message"]
    async with running(create_app(scraped)) as http:
        for headers in ({}, ADMIN, {"authorization": "Bearer wrong"}):
            refused = await http.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
        assert (await http.get("/metrics", headers=SCRAPE)).status_code == 200


def test_operation_names_beyond_the_cap_are_other() -> None:
    names = BoundedNames(MAX_OPERATION_NAMES)
    assert [names(f"Op{n}") for n in range(MAX_OPERATION_NAMES)] == [f"Op{n}" for n in range(100)]
    assert names("OneTooMany") == OTHER
    assert names("Op7") == "Op7"
    assert BoundedNames(5)("not a name") == OTHER
    assert names.known("NeverSeen") == OTHER


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The logging configuration ``serve`` uses, in JSON, writing to a buffer; put back after."""
    root = logging.getLogger()
    kept = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in _configured()]
    lines = io.StringIO()
    config = log_config("json")
    config["handlers"]["stderr"]["stream"] = lines
    logging.config.dictConfig(config)
    try:
        yield lines
    finally:
        for handler in root.handlers:
            if handler not in kept[0][1]:
                handler.close()
        for logger, handlers, level, propagate in kept:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def _configured() -> list[logging.Logger]:
    return [logging.getLogger(), *(logging.getLogger(name) for name in UVICORN_LOGGERS)]


def records(lines: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines.getvalue().splitlines() if line.strip()]


async def test_a_masked_error_is_logged_as_json_with_the_request_id(
    gateway: GatewayClient, database: Database, json_logs: io.StringIO
) -> None:
    await database["extension_definitions"].insert_one({"_id": "broken"})  # lacks its fields
    result = await gateway.execute(DEFINITIONS, headers={"x-request-id": "checkout-42"})
    assert result.error_codes == ["INTERNAL_SERVER_ERROR"]
    assert result.headers["x-request-id"] == "checkout-42"
    error_id = result.body["errors"][0]["extensions"]["errorId"]
    [line] = [r for r in records(json_logs) if r.get("error_id") == error_id]
    assert line["request_id"] == "checkout-42"
    assert line["level"] == "ERROR"
    assert line["logger"] == "profilegate.api"
    assert line["message"] == f"internal error {error_id}"
    assert "KeyError" in line["exc_info"]
    assert line["time"].startswith("20")
    assert [r for r in records(json_logs) if r["level"] == "ERROR"] == [line]  # logged once


# Each a client's mistake the gateway refuses (the comments name what the parsers under it raise).
CLIENT_MISTAKES = [
    '{ profile(ref: {identity: {type: PHONE, value: "not a number"}}) { id } }',  # NumberParseException
    '{ loyaltyWhatIf(ref: {id: "p"}, cartTotal: "abc") { reason } }',  # decimal.InvalidOperation
    '{ loyaltyWhatIf(ref: {id: "p"}, cartTotal: "1e99999999999") { reason } }',  # decimal.Overflow
    'mutation { setExtension(ref: {id: "p"}, name: "v", reason: "r", expiresAt: "31.12.2027") {__typename} }',
    '{ shopMetrics(from: "2026-13-01", to: "2026-11-30") { total { orders } } }',
    "{ noSuchField }",
    "{ viewer { name }",
    '{ merges(ref: {id: "p"}, first: 0) { loser } }',
]


async def test_a_clients_mistakes_are_info_lines_without_a_traceback(
    gateway: GatewayClient, json_logs: io.StringIO
) -> None:
    for document in CLIENT_MISTAKES:
        result = await gateway.execute(document)
        assert result.body["errors"], document
        assert "INTERNAL_SERVER_ERROR" not in result.error_codes, result.body

    logged = records(json_logs)
    assert [r for r in logged if r["level"] != "INFO"] == []
    assert [r for r in logged if "exc_info" in r] == []
    refused = [r["message"] for r in logged if r["logger"] == "profilegate.api"]
    assert len(refused) == len(CLIENT_MISTAKES), refused
    assert refused[0] == (
        "request refused: ref.identity.value: is not a phone number; expected the international form, "
        "e.g. +49 30 1234567"
    )


@pytest.mark.parametrize("sent", [None, "has spaces", "x" * 129, "semi;colon"])
async def test_a_missing_or_odd_request_id_is_replaced_by_a_generated_one(
    gateway: GatewayClient, sent: str | None
) -> None:
    headers = {} if sent is None else {"x-request-id": sent}
    response = await gateway.http.get("/healthz", headers=headers)
    returned = response.headers["x-request-id"]
    assert returned != sent
    assert len(returned) == 32
    assert int(returned, 16) >= 0


async def test_a_websocket_gets_its_request_id_with_the_accept(settings: Settings) -> None:
    async with serving(create_app(settings)) as (base, _), FeedSocket.open(base) as socket:
        response = socket.connection.response
        assert response is not None
        assert len(response.headers["x-request-id"]) == 32


async def test_readiness_reports_the_store_and_the_feed(scraped: Settings) -> None:
    async with serving(create_app(scraped)) as (base, client), FeedSocket.open(base) as socket:
        await socket.subscribe()
        ready = await client.http.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["store"]["status"] == "ok"
    assert body["store"]["latencyMs"] >= 0
    assert body["feed"]["running"] is True
    assert body["feed"]["subscribers"] == 1
    assert body["feed"]["lag"] == body["feed"]["head"] - body["feed"]["position"] >= 0


async def test_readiness_is_503_once_the_feed_follower_has_died(gateway: GatewayClient) -> None:
    assert (await gateway.http.get("/readyz")).status_code == 200
    [follower] = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "FeedFollower.run"]  # type: ignore[union-attr]  # a task's coroutine
    follower.cancel()
    await asyncio.gather(follower, return_exceptions=True)
    response = await gateway.http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["feed"]["running"] is False
    assert response.json()["store"]["status"] == "ok"
