"""A thin GraphQL client over the real ASGI app, and a clock the tests move."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

ADMIN_KEY = "test-admin-key"


@dataclass
class FrozenClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class GraphQLResult:
    status: int
    body: dict[str, Any]
    headers: httpx.Headers = field(default_factory=httpx.Headers)

    @property
    def data(self) -> dict[str, Any]:
        assert "errors" not in self.body, self.body
        data = self.body["data"]
        assert isinstance(data, dict)
        return data

    @property
    def error_codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code", "") for e in self.body.get("errors", [])]


class GatewayClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def execute(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = ADMIN_KEY,
        headers: dict[str, str] | None = None,
    ) -> GraphQLResult:
        sent = dict(headers or {})
        if key is not None:
            sent["authorization"] = f"Bearer {key}"
        response = await self.http.post(
            "/graphql", json={"query": document, "variables": variables or {}}, headers=sent
        )
        return GraphQLResult(response.status_code, response.json(), response.headers)

    async def create_key(self, role: str, name: str | None = None) -> str:
        result = await self.execute(
            "mutation($name: String!, $role: Role!) { createApiKey(name: $name, role: $role) {"
            " ... on ApiKeyCreated { token } } }",
            {"name": name or f"{role.lower()}-key", "role": role},
        )
        token = result.data["createApiKey"]["token"]
        assert isinstance(token, str)
        return token

    async def create_storefront_key(
        self, name: str = "shop-web", proof_public_key: str | None = None
    ) -> "StorefrontKey":
        """A storefront key with what the shop's back end needs to sign shopper proofs."""
        result = await self.execute(
            "mutation($name: String!, $pem: String) { createApiKey(name: $name, role: STOREFRONT,"
            " proofPublicKey: $pem) { ... on ApiKeyCreated { token proofSecret key { id } }"
            " ... on InvalidInputError { field message } } }",
            {"name": name, "pem": proof_public_key},
        )
        created = result.data["createApiKey"]
        assert "token" in created, created
        return StorefrontKey(
            token=created["token"], key_id=created["key"]["id"], secret=created["proofSecret"]
        )


@dataclass(frozen=True)
class StorefrontKey:
    token: str
    key_id: str  # the ``aud`` of its shopper proofs
    secret: str | None  # the HS256 proof secret; None when the shop's public key checks proofs


@contextlib.asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan started, and an HTTP client talking to it in-process."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http
