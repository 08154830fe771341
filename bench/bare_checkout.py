"""A bare checkout endpoint: the loyalty query's reads and tier function, without the gateway.

``POST /loyalty`` takes the body the storefront sends to ``/graphql`` for the ``loyalty``
query and reads only ``variables.ref.identity`` from it. It then does on the store what the
query needs: the e-mail normalised (``normalise_identity``), the identity key read by ``_id``
from its partition, the profile's checkout document (``profile_checkout``: packed net spend per
day, extensions) read by ``_id`` from its partition, and ``evaluate_loyalty`` over
``unpack_spend`` and ``extensions_from_document`` against the active policy, which is read
once at start-up. An
unknown customer is evaluated with no spend and no extensions (the entry tier). The answer is
a small JSON object. No authentication, no GraphQL, no permissions.

The checkout benchmark runs it next to the gateway on the same store, under uvicorn with the
gateway's loop and HTTP implementation, one worker and no access log:

    python -m bench.bare_checkout --port PORT --uri MONGODB_URI [--database profilegate]
"""

import argparse
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import uvicorn
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.money import Currencies
from profilegate.domain.tiers import Benefit, Loyalty, TierPolicy, evaluate_loyalty
from profilegate.storage.aggregates import unpack_spend
from profilegate.storage.documents import Database, Document
from profilegate.storage.layout import Layout, load_layout
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.profiles import extensions_from_document
from profilegate.storage.tier_policies import TierPolicyRepository


@dataclass(frozen=True)
class Store:
    identity_keys: PartitionedCollection
    checkout: PartitionedCollection
    policy: TierPolicy


async def open_store(database: Database) -> Store:
    """The partitioned collections of the gateway's layout, and its active policy."""
    layout = await load_layout(database, Layout())
    policy = await TierPolicyRepository(database).active()
    if policy is None:
        raise RuntimeError("no tier policy is active: publish one before starting the bare endpoint")
    return Store(
        identity_keys=PartitionedCollection(database, "identity_keys", layout.partitions),
        checkout=PartitionedCollection(database, "profile_checkout", layout.partitions),
        policy=policy,
    )


async def loyalty_document(store: Store, identity: Mapping[str, Any]) -> Document | None:
    """The checkout document of the customer with this identity, if there is one."""
    key = normalise_identity(IdentityType[identity["type"]], identity["value"]).key
    owner = await store.identity_keys.for_id(key).find_one({"_id": key}, {"profileId": 1})
    if owner is None:
        return None
    profile_id = str(owner["profileId"])
    return await store.checkout.for_id(profile_id).find_one({"_id": profile_id})


async def read_loyalty(store: Store, identity: Mapping[str, Any]) -> Loyalty:
    document = await loyalty_document(store, identity)
    now = datetime.now(UTC)
    if document is None:
        return evaluate_loyalty(store.policy, {}, {}, now)
    spend = unpack_spend(document["spend"])
    return evaluate_loyalty(store.policy, spend, extensions_from_document(document), now)


def benefit_value(benefit: Benefit) -> object:
    return str(benefit.value) if isinstance(benefit.value, Decimal) else benefit.value


def answer(loyalty: Loyalty, policy: TierPolicy) -> dict[str, Any]:
    """What the storefront's query selects, as plain JSON."""
    to_next = loyalty.to_next_tier
    return {
        "tier": None if loyalty.tier is None else {"name": loyalty.tier.name},
        "reason": loyalty.reason.value,
        "validUntil": None if loyalty.valid_until is None else loyalty.valid_until.isoformat(),
        "amountToNextTier": None
        if to_next is None
        else {"amount": Currencies(base=policy.currency).format(to_next), "currency": policy.currency},
        "benefits": [{"key": b.key, "value": benefit_value(b)} for b in loyalty.benefits],
        "policyVersion": policy.version,
    }


def create_app(uri: str, database: str) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Store]]:
        client: AsyncMongoClient[Document] = AsyncMongoClient(uri, tz_aware=True)
        try:
            yield {"store": await open_store(client[database])}
        finally:
            await client.close()

    async def loyalty(request: Request) -> Response:
        store: Store = request.state.store
        body = orjson.loads(await request.body())
        result = await read_loyalty(store, body["variables"]["ref"]["identity"])
        return Response(orjson.dumps(answer(result, store.policy)), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"alive"}', media_type="application/json")

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/loyalty", loyalty, methods=["POST"])],
        lifespan=lifespan,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bare_checkout",
        description="The loyalty query's store reads and tier function behind a bare Starlette route.",
    )
    parser.add_argument("--port", type=int, required=True, help="port to listen on (127.0.0.1)")
    parser.add_argument("--uri", required=True, help="MongoDB URI of the gateway's store")
    parser.add_argument("--database", default="profilegate", help="database (default profilegate)")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.uri, args.database),
        host="127.0.0.1",
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
    )


if __name__ == "__main__":
    main()
