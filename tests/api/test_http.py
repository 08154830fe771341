"""The HTTP surface: keys, health, body limits, GraphQL-over-HTTP media types, GraphiQL."""

from collections.abc import AsyncIterator

from profilegate.app import create_app
from profilegate.embedded import EmbeddedStore
from profilegate.settings import Settings
from tests.gateway import ADMIN_KEY, GatewayClient, running

VIEWER = "{ viewer { name role } }"
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


async def test_graphql_without_a_key_is_401(gateway: GatewayClient) -> None:
    for headers in ({}, {"authorization": "Bearer pgk_0000_1111"}, {"authorization": "Basic abc"}):
        response = await gateway.http.post("/graphql", json={"query": VIEWER}, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_health_and_readiness_need_no_key(gateway: GatewayClient) -> None:
    assert (await gateway.http.get("/healthz")).json() == {"status": "alive"}
    ready = await gateway.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_readiness_is_503_when_the_store_goes_away(settings: Settings) -> None:
    with EmbeddedStore(data_dir=None, engine="memory") as store:
        own = settings.model_copy(update={"mongodb_uri": f"{store.uri}&serverSelectionTimeoutMS=500"})
        async with running(create_app(own)) as http:
            assert (await http.get("/readyz")).status_code == 200
            store.stop()
            response = await http.get("/readyz")
            assert response.status_code == 503
            assert response.json()["status"] == "unavailable"
            assert (await http.get("/healthz")).status_code == 200


async def test_a_revoked_key_stops_working(gateway: GatewayClient) -> None:
    key = await gateway.create_key("STOREFRONT", "till-7")
    assert (await gateway.execute(VIEWER, key=key)).data["viewer"] == {"name": "till-7", "role": "STOREFRONT"}
    revoked = await gateway.execute(
        'mutation { revokeApiKey(idOrName: "till-7") { keys { name revokedAt } } }'
    )
    assert revoked.data["revokeApiKey"]["keys"][0]["revokedAt"] is not None
    assert (await gateway.execute(VIEWER, key=key)).status == 401


async def test_a_tampered_secret_is_refused(gateway: GatewayClient) -> None:
    key = await gateway.create_key("ADMIN", "ops")
    tampered = key[:-1] + ("0" if key[-1] != "0" else "1")
    assert (await gateway.execute(VIEWER, key=tampered)).status == 401


async def test_a_declared_oversized_body_is_413(gateway: GatewayClient, settings: Settings) -> None:
    body = b'{"query": "' + b" " * settings.max_body_bytes + b'{ viewer { name } }"}'
    response = await gateway.http.post(
        "/graphql", content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"] == {
        "code": "PAYLOAD_TOO_LARGE",
        "limit": settings.max_body_bytes,
    }


async def test_a_streamed_oversized_body_is_413_without_reading_it_all(
    gateway: GatewayClient, settings: Settings
) -> None:
    chunk = b" " * 65_536
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(200):  # 13 MB offered, far over the limit
            sent += len(chunk)
            yield chunk

    response = await gateway.http.post(
        "/graphql", content=chunks(), headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert sent < 200 * len(chunk)


async def test_malformed_json_is_a_clear_error(gateway: GatewayClient) -> None:
    response = await gateway.http.post(
        "/graphql",
        content=b'{"query": ',
        headers={**AUTH, "content-type": "application/json", "accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["errors"][0]["message"]


async def test_get_runs_queries_but_not_mutations(gateway: GatewayClient) -> None:
    response = await gateway.http.get("/graphql", params={"query": VIEWER}, headers=AUTH)
    assert response.json() == {"data": {"viewer": {"name": "admin-key", "role": "ADMIN"}}}
    mutation = 'mutation { revokeApiKey(idOrName: "x") { keys { id } } }'
    refused = await gateway.http.get("/graphql", params={"query": mutation}, headers=AUTH)
    assert refused.status_code == 405
    assert "GET" in refused.text


async def test_graphql_response_json_when_asked_for(gateway: GatewayClient) -> None:
    accept = {"accept": "application/graphql-response+json, application/json;q=0.9"}
    ok = await gateway.execute(VIEWER, headers=accept)
    assert ok.status == 200
    assert ok.headers["content-type"] == "application/graphql-response+json; charset=utf-8"
    invalid = await gateway.execute("{ viewer { nosuchfield } }", headers=accept)
    assert invalid.status == 400
    assert invalid.headers["content-type"] == "application/graphql-response+json; charset=utf-8"
    assert "data" not in invalid.body
    # Plain JSON clients get 200 for the same validation error, as the spec asks.
    plain = await gateway.execute("{ viewer { nosuchfield } }")
    assert plain.status == 200
    assert plain.headers["content-type"] == "application/json; charset=utf-8"
    assert "nosuchfield" in plain.body["errors"][0]["message"]


async def test_graphiql_in_development_only(settings: Settings) -> None:
    html = {"accept": "text/html"}
    for production, expected in ((False, 200), (True, 404)):
        configured = settings.model_copy(update={"env": "production" if production else "development"})
        async with running(create_app(configured)) as http:
            page = await http.get("/graphql", headers={**html, **AUTH})
            assert page.status_code == expected
            if expected == 200:
                assert "graphiql" in page.text.lower()
