"""CORS per API key: preflights for origins some key allows, requests checked against their own key."""

from typing import Any

import pytest

from tests.gateway import GatewayClient

SHOP = "https://shop.example.com"
APP = "https://app.example.com"
VIEWER = "{ viewer { name } }"
CREATE = """
mutation($name: String!, $origins: [String!]) {
  createApiKey(name: $name, role: STOREFRONT, allowedOrigins: $origins) {
    ... on ApiKeyCreated { token key { allowedOrigins } }
    ... on InvalidInputError { field message }
  }
}
"""


async def create(gateway: GatewayClient, name: str, *origins: str) -> dict[str, Any]:
    result = await gateway.execute(CREATE, {"name": name, "origins": list(origins)})
    created = result.data["createApiKey"]
    assert isinstance(created, dict)
    return created


async def key_for(gateway: GatewayClient, name: str, *origins: str) -> str:
    token = (await create(gateway, name, *origins))["token"]
    assert isinstance(token, str)
    return token


async def preflight(gateway: GatewayClient, origin: str, path: str = "/graphql") -> Any:
    return await gateway.http.options(
        path,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )


async def test_a_preflight_from_an_origin_a_key_allows_is_answered(gateway: GatewayClient) -> None:
    await key_for(gateway, "shop-web", SHOP)

    for path in ("/graphql", "/v1/track"):
        answer = await preflight(gateway, SHOP, path)
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == SHOP
        assert answer.headers["access-control-allow-methods"] == "GET, POST"
        assert answer.headers["access-control-allow-headers"] == "authorization, content-type, shopper-proof"
        assert int(answer.headers["access-control-max-age"]) > 0


async def test_a_preflight_from_an_origin_no_key_allows_is_refused(gateway: GatewayClient) -> None:
    await key_for(gateway, "shop-web", SHOP)

    answer = await preflight(gateway, "https://elsewhere.example")

    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers


async def test_a_revoked_keys_origins_are_no_longer_allowed(gateway: GatewayClient) -> None:
    await key_for(gateway, "shop-web", SHOP)
    await gateway.execute('mutation { revokeApiKey(idOrName: "shop-web") { keys { id } } }')

    assert (await preflight(gateway, SHOP)).status_code == 403


async def test_an_options_request_that_is_no_preflight_is_refused(gateway: GatewayClient) -> None:
    answer = await gateway.http.options("/graphql", headers={"origin": SHOP})

    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers


async def test_a_request_from_an_origin_its_key_allows_may_be_read(gateway: GatewayClient) -> None:
    shop = await key_for(gateway, "shop-web", SHOP)

    answer = await gateway.execute(VIEWER, key=shop, headers={"origin": SHOP})

    assert answer.data == {"viewer": {"name": "shop-web"}}
    assert answer.headers["access-control-allow-origin"] == SHOP
    assert "Origin" in answer.headers["vary"]


async def test_a_request_from_another_keys_origin_is_refused(gateway: GatewayClient) -> None:
    shop = await key_for(gateway, "shop-web", SHOP)
    await key_for(gateway, "app-web", APP)

    answer = await gateway.execute(VIEWER, key=shop, headers={"origin": APP})

    assert answer.status == 403
    assert answer.error_codes == ["ORIGIN_NOT_ALLOWED"]
    assert "access-control-allow-origin" not in answer.headers


async def test_a_key_without_origins_is_refused_in_a_browser_on_another_origin(
    gateway: GatewayClient,
) -> None:
    backend = await key_for(gateway, "shop-backend")

    answer = await gateway.execute(VIEWER, key=backend, headers={"origin": SHOP})

    assert answer.error_codes == ["ORIGIN_NOT_ALLOWED"]


@pytest.mark.parametrize("origin", [None, "http://gateway"])  # server to server; the gateway's own page
async def test_requests_without_a_foreign_origin_are_unaffected(
    gateway: GatewayClient, origin: str | None
) -> None:
    backend = await key_for(gateway, "shop-backend")

    answer = await gateway.execute(VIEWER, key=backend, headers={} if origin is None else {"origin": origin})

    assert answer.data == {"viewer": {"name": "shop-backend"}}
    assert "access-control-allow-origin" not in answer.headers


async def test_origins_are_kept_as_browsers_send_them(gateway: GatewayClient) -> None:
    created = await create(gateway, "shop-web", "https://Shop.Example.com:443", "http://localhost:3000")

    assert created["key"]["allowedOrigins"] == [SHOP, "http://localhost:3000"]


@pytest.mark.parametrize(
    ("origins", "field"),
    [
        ([SHOP, "https://shop.example.com/checkout"], "allowedOrigins[1]"),
        (["shop.example.com"], "allowedOrigins[0]"),
        (["*"], "allowedOrigins[0]"),
        ([f"https://shop{n}.example.com" for n in range(21)], "allowedOrigins"),
    ],
)
async def test_an_origin_that_is_not_scheme_host_port_is_refused(
    gateway: GatewayClient, origins: list[str], field: str
) -> None:
    refused = await create(gateway, "shop-web", *origins)

    assert refused["field"] == field
    keys = await gateway.execute("{ apiKeys { name } }")
    assert keys.data == {"apiKeys": []}
