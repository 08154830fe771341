"""Rate limits per API key over HTTP and WebSocket: 429 with Retry-After past the burst."""

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from profilegate.app import create_app
from profilegate.settings import Settings
from tests.feed_client import FeedSocket, serving
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient, GraphQLResult

VIEWER = "{ viewer { name role } }"
BURST = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Three requests at once, then one every two seconds (so none comes back during a test)."""
    tight = {"per_second": 0.5, "burst": BURST}
    return settings.model_copy(
        update={
            f"rate_limit_{role}_{name}": value
            for role in ("storefront", "admin")
            for name, value in tight.items()
        }
    )


async def exhaust(gateway: GatewayClient, key: str) -> GraphQLResult:
    for _ in range(BURST):
        assert (await gateway.execute(VIEWER, key=key)).status == 200
    return await gateway.execute(VIEWER, key=key)


async def test_a_burst_over_the_limit_gets_429_with_retry_after(gateway: GatewayClient) -> None:
    shop = await gateway.create_key("STOREFRONT", "shop-web")

    refused = await exhaust(gateway, shop)

    assert refused.status == 429
    assert refused.headers["retry-after"] == "2"
    assert refused.error_codes == ["RATE_LIMITED"]
    error = refused.body["errors"][0]
    assert error["message"] == "rate limit of 0.5 requests/s for this key exceeded"
    assert error["extensions"]["retryAfter"] == 2


async def test_another_key_is_not_slowed_by_one_over_its_limit(gateway: GatewayClient) -> None:
    shop, other = (
        await gateway.create_key("STOREFRONT", "shop-web"),
        await gateway.create_key("STOREFRONT", "app"),
    )

    assert (await exhaust(gateway, shop)).status == 429

    answered = await gateway.execute(VIEWER, key=other)
    assert answered.data == {"viewer": {"name": "app", "role": "STOREFRONT"}}


async def test_the_admin_key_is_one_key_and_its_bucket_counts_on_every_route(gateway: GatewayClient) -> None:
    # createApiKey calls would use up the admin key's tokens: this test uses the admin key only.
    assert (await exhaust(gateway, ADMIN_KEY)).status == 429

    tracked = await gateway.http.post(
        "/v1/track", json={"events": []}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert tracked.status_code == 429
    assert tracked.headers["retry-after"] == "2"


async def test_a_websocket_over_the_limit_is_refused_at_the_handshake(
    settings: Settings, clock: FrozenClock
) -> None:
    async with serving(create_app(settings, clock=clock)) as (base, client):
        shop = await client.create_key("STOREFRONT", "shop-web")
        assert (await exhaust(client, shop)).status == 429

        with pytest.raises(InvalidStatus) as refused:
            await connect(
                base.replace("http", "ws") + "/graphql",
                subprotocols=[Subprotocol("graphql-transport-ws")],
                additional_headers={"authorization": f"Bearer {shop}"},
            )
        assert refused.value.response.status_code == 429
        assert refused.value.response.headers["retry-after"] == "2"


async def test_a_key_sent_in_connection_params_over_its_limit_is_rejected(
    settings: Settings, clock: FrozenClock
) -> None:
    async with serving(create_app(settings, clock=clock)) as (base, client):
        shop = await client.create_key("STOREFRONT", "shop-web")
        assert (await exhaust(client, shop)).status == 429

        async with FeedSocket.open(base, key=None, acknowledge=False) as refused:
            await refused.send({"type": "connection_init", "payload": {"authorization": f"Bearer {shop}"}})
            closed = await refused.closed()
        assert closed.rcvd is not None
        assert closed.rcvd.code == 4403


async def test_an_unknown_key_is_told_401_not_429(gateway: GatewayClient) -> None:
    answers = [await gateway.execute(VIEWER, key="pgk_nope_nope") for _ in range(BURST + 1)]

    assert {answer.status for answer in answers} == {401}


def test_the_default_limits_per_role() -> None:
    limits = Settings(mongodb_uri="mongodb://unused").rate_limits

    assert {role.value: (limit.per_second, limit.burst) for role, limit in limits.items()} == {
        "storefront": (50.0, 100),
        "ingest": (200.0, 400),
        "partner": (20.0, 40),
        "admin": (100.0, 200),
    }
