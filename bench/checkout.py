"""The storefront's ``loyalty`` query over HTTP, against a bare endpoint doing the same work.

Starts a real gateway (``python -m profilegate serve`` with ``PROFILEGATE_ENV=production``,
one worker, on a free port, in a process group of its own, with the embedded store it starts
in a temporary data directory), creates a ``STOREFRONT`` key, defines the extensions of
``fixtures/extensions.json`` and publishes and activates the tier policy (``--policy``,
default ``fixtures/tier_policy.json``) through GraphQL. Customers are then bulk-loaded into
the gateway's store with the same fold the rebuild uses (``fold_events`` over
``parse_event``-ed events, written with ``profile_to_document`` and their identity keys into
their partitions, with their checkout documents), because tracking 100,000 events through the
gateway takes over an hour on this store:

- ``--customers`` customers ``customer-N@example.com`` with 6 to 14 events (10 on average)
  in the last 60 days: page and product views, adds to cart, checkouts, orders (more for
  some customers than for others, so tiers differ) and returns; a few hold an extension that
  the policy overrides on (``employee``, ``no-reward``, ``status-match-gold``);
- ``light@example.com`` with exactly 10 such events;
- ``heavy@example.com`` with ``--heavy-events`` (100,000) events over the last 365 days,
  mostly page and product views, 1.5% orders, a quarter of them returned.

A bare endpoint (``bench/bare_checkout.py``: Starlette under uvicorn with the gateway's
settings, in a process of its own) does the query's store reads and tier function on the same
store, without authentication or GraphQL. Before measuring, every customer is asked once on
both paths: every answer must be free of errors and give the same tier and reason.

The load comes from ``wrk`` in a process of its own (``threads = min(clients, 2)``, one
connection per client), with a Lua script that rotates over the customers' request bodies and
prints requests, duration and latency percentiles as one JSON line from ``done()``. Each run
lasts ``--seconds`` after an uncounted warm-up of ``--warmup-seconds``; any status >= 400 or
socket error fails the run. In one run:

- gateway and bare endpoint at 1, 16 and 64 clients, alternating which goes first;
- the gateway for the light and the heavy customer at 1 and 16 clients.

Prints a Markdown section to stdout and writes nothing unless ``--write PATH`` is given.
Progress goes to stderr. The gateway, the bare endpoint and their data are removed at the
end, also on errors, Ctrl+C and SIGTERM.

    .venv/bin/python -m bench.checkout [--customers 1000] [--seconds 15] [--write BENCHMARKS.md]
"""

import argparse
import asyncio
import contextlib
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import bson
import httpx
import orjson
from pymongo import AsyncMongoClient

from bench.gateway import (
    BenchmarkError,
    Gateway,
    Server,
    StorefrontKey,
    create_storefront_key,
    free_port,
    progress,
    running_gateway,
)
from bench.ingest import PRICES
from bench.machine import TargetResult, gateway_versions, load_average, machine, publish, target_lines
from bench.store_scale import CATEGORIES, insert_routed
from profilegate.domain.aggregates import fold_events
from profilegate.domain.events import Channel, EventType, parse_event
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.profiles import Profile
from profilegate.settings import Settings
from profilegate.storage.documents import Document
from profilegate.storage.layout import Layout, load_layout
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.profiles import checkout_document, profile_to_document

REPOSITORY = Path(__file__).resolve().parent.parent
FIXTURES = REPOSITORY / "fixtures"
CLIENTS = (1, 16, 64)
HISTORY_CLIENTS = (1, 16)
SHARE_CLIENTS = 16
SHARE_TARGET = 0.50  # the gateway's requests/s at SHARE_CLIENTS, as a share of the bare endpoint's
HISTORY_TARGET = 1.20  # the heavy customer's p99 at most this multiple of the light customer's
LIGHT_EMAIL = "light@example.com"
HEAVY_EMAIL = "heavy@example.com"
LIGHT_EVENTS = 10
CUSTOMER_EVENTS = (6, 14)  # fewest and most events of an ordinary customer
CUSTOMER_DAYS = 60
HEAVY_DAYS = 365
CUSTOMER_ORDER_SHARES = (0.0, 0.05, 0.10, 0.20, 0.30)  # each customer orders at one of these rates
LIGHT_ORDER_SHARE = 0.20
HEAVY_ORDER_SHARE = 0.015
RETURN_SHARE = 0.25  # returns per order
BROWSING = (
    (EventType.PAGE_VIEW, 0.40),
    (EventType.PRODUCT_VIEW, 0.40),
    (EventType.ADD_TO_CART, 0.12),
    (EventType.CHECKOUT_STARTED, 0.08),
)
# Extensions the default policy overrides on: name, share of the ordinary customers, days left.
GRANTS = (("employee", 0.02, None), ("no-reward", 0.01, None), ("status-match-gold", 0.01, 60))
CHANNELS = (Channel.WEB.value, Channel.APP.value)
CATALOGUE_SIZE = 300
MIN_AGE_SECONDS = 60.0
WRK_TIMEOUT_SECONDS = 30
WRK_GRACE_SECONDS = 120
RESULT_MARK = "CHECKOUT-RESULT "
REQUEST_TIMEOUT_SECONDS = 60.0

LOYALTY_QUERY = (
    "query Checkout($ref: ProfileRef!) { loyalty(ref: $ref) { tier { name } reason validUntil "
    "amountToNextTier { amount currency } benefits { key value } policyVersion } }"
)
DEFINE_EXTENSION = """
mutation Define($input: DefineExtensionInput!) {
  defineExtension(input: $input) {
    __typename
    ... on ExtensionDefined { outcome }
    ... on InvalidInputError { field message }
  }
}
"""
PUBLISH_POLICY = """
mutation Publish($policy: TierPolicyInput!) {
  publishTierPolicy(policy: $policy, activate: true) {
    __typename
    ... on TierPolicy { version }
    ... on Error { message }
  }
}
"""
# Rotates over the request bodies in a file (one per line; each thread starts at another one)
# and prints what the benchmark reads as one JSON line after {mark} (RESULT_MARK). Headers come
# from wrk's -H options.
WRK_SCRIPT = """
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("first", #threads)
end

function init(args)
  bodies = {}
  for line in io.lines(args[1]) do
    if line ~= "" then
      local proof, body = line:match("^([^\t]*)\t(.*)$")
      local headers = {}
      for name, value in pairs(wrk.headers) do headers[name] = value end
      headers["Shopper-Proof"] = proof
      bodies[#bodies + 1] = wrk.format("POST", nil, headers, body)
    end
  end
  position = ((first - 1) * 7919) % #bodies
end

function request()
  position = position % #bodies + 1
  return bodies[position]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    "{mark}", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# --- options -----------------------------------------------------------------------------


# The benchmark measures the gateway's answers, not its rate limiter: wrk's clients are one
# address, so the storefront key's per-client bucket is raised out of the way.
UNLIMITED = {
    "PROFILEGATE_RATE_LIMIT_STOREFRONT_PER_SECOND": "1000000",
    "PROFILEGATE_RATE_LIMIT_STOREFRONT_BURST": "1000000",
}


@dataclass(frozen=True)
class Options:
    customers: int
    seconds: int
    warmup_seconds: int
    heavy_events: int
    policy: Path
    seed: int
    write: Path | None


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.checkout",
        description="The storefront loyalty query through the gateway, against a bare endpoint.",
    )
    add = parser.add_argument
    add("--customers", type=int, default=1000, help="ordinary customers, ~10 events each (default 1000)")
    add("--seconds", type=int, default=15, help="duration of each measured wrk run (default 15)")
    add("--warmup-seconds", type=int, default=3, help="uncounted wrk run before each (default 3)")
    add(
        "--heavy-events",
        type=int,
        default=100_000,
        help=f"events of {HEAVY_EMAIL} over the last {HEAVY_DAYS} days (default 100000)",
    )
    add(
        "--policy",
        type=Path,
        default=FIXTURES / "tier_policy.json",
        help="TierPolicyInput to publish and activate (default fixtures/tier_policy.json)",
    )
    add("--seed", type=int, default=1, help="seed of the generated customers (default 1)")
    add("--write", type=Path, default=None, help="also append the section to this file")
    args = parser.parse_args(argv)
    if min(args.customers, args.seconds, args.heavy_events) < 1 or args.warmup_seconds < 0:
        parser.error("need --customers, --seconds, --heavy-events >= 1 and --warmup-seconds >= 0")
    if not args.policy.is_file():
        parser.error(f"--policy {args.policy} is not a file")
    return Options(**{name: getattr(args, name) for name in Options.__dataclass_fields__})


# --- customers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Customer:
    """A customer's profile document as the gateway stores it, and its identity key."""

    email: str
    events: int
    orders: int
    returned_orders: int
    document: Document
    checkout: Document
    key: Document

    @property
    def identity(self) -> dict[str, str]:
        return {"type": "EMAIL", "value": self.email}

    @property
    def body(self) -> bytes:
        """The storefront's request for this customer's loyalty."""
        return orjson.dumps({"query": LOYALTY_QUERY, "variables": {"ref": {"identity": self.identity}}})

    def line(self, key: StorefrontKey) -> bytes:
        """What wrk sends for this customer: the shopper proof a page holds, a tab, the body."""
        return key.proof(self.identity).encode() + b"\t" + self.body

    @property
    def size(self) -> int:
        return len(bson.encode(self.document))


def event_mix(order_share: float) -> tuple[list[EventType], list[float]]:
    """Event types and their weights: browsing, ``order_share`` orders, and their returns."""
    rest = 1.0 - order_share * (1.0 + RETURN_SHARE)
    kinds = [kind for kind, _ in BROWSING] + [EventType.ORDER_COMPLETED, EventType.ORDER_RETURNED]
    weights = [share * rest for _, share in BROWSING] + [order_share, order_share * RETURN_SHARE]
    return kinds, weights


class HistoryFactory:
    """Raw events as ``track`` receives them, addressed by profile id; cheap to make in bulk.

    Browsing events reuse a few prepared property objects; orders have one to three line
    items adding up to their total; a return gives back the first line of an earlier order.
    """

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        products = [
            (f"SKU-{number:05d}", self.rng.choice(CATEGORIES), self.rng.choice(PRICES))
            for number in range(1, CATALOGUE_SIZE + 1)
        ]
        self.lines: list[dict[str, Any]] = [
            {"sku": sku, "category": c, "price": str(price)} for sku, c, price in products
        ]
        self.views = [{**line, "currency": "EUR"} for line in self.lines]
        self.carts = [{**view, "quantity": quantity} for view in self.views for quantity in (1, 2)]
        self.checkouts = [{"cartTotal": str(price), "currency": "EUR"} for price in PRICES]
        self.pages = [{"url": f"https://shop.example/{name}", "title": name} for name in CATEGORIES]
        self.order_count = 0

    def profile_id(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4).hex

    def history(self, profile_id: str, count: int, days: int, order_share: float) -> list[dict[str, Any]]:
        """``count`` events within the last ``days`` days, oldest first."""
        rng = self.rng
        kinds, weights = event_mix(order_share)
        ages = sorted((rng.uniform(MIN_AGE_SECONDS, days * 86_400.0) for _ in range(count)), reverse=True)
        unreturned: list[tuple[str, dict[str, Any]]] = []
        events: list[dict[str, Any]] = []
        for number, (age, kind) in enumerate(zip(ages, rng.choices(kinds, weights, k=count), strict=True)):
            if kind is EventType.ORDER_RETURNED and not unreturned:
                kind = EventType.PRODUCT_VIEW
            events.append(
                {
                    "id": f"{profile_id}-{number}",
                    "type": kind.value,
                    "at": self.now - timedelta(seconds=age),
                    "channel": rng.choice(CHANNELS),
                    "profileId": profile_id,
                    "properties": self.properties(kind, unreturned),
                }
            )
        return events

    def properties(self, kind: EventType, unreturned: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        match kind:
            case EventType.ORDER_COMPLETED:
                return self.order(unreturned)
            case EventType.ORDER_RETURNED:
                order_id, line = unreturned.pop(self.rng.randrange(len(unreturned)))
                amount = Decimal(line["price"]) * line["quantity"]
                items = [{"sku": line["sku"], "quantity": line["quantity"]}]
                return {"orderId": order_id, "amount": str(amount), "currency": "EUR", "items": items}
            case EventType.PAGE_VIEW:
                return self.rng.choice(self.pages)
            case EventType.ADD_TO_CART:
                return self.rng.choice(self.carts)
            case EventType.CHECKOUT_STARTED:
                return self.rng.choice(self.checkouts)
            case _:
                return self.rng.choice(self.views)

    def order(self, unreturned: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        self.order_count += 1
        order_id = f"ORD-{self.order_count:08d}"
        picked = self.rng.sample(self.lines, self.rng.choice((1, 1, 2, 2, 3)))
        lines = [{**line, "quantity": self.rng.choice((1, 1, 2))} for line in picked]
        total = sum((Decimal(line["price"]) * line["quantity"] for line in lines), Decimal(0))
        unreturned.append((order_id, lines[0]))
        return {"orderId": order_id, "total": str(total), "currency": "EUR", "items": lines}

    def grants(self) -> dict[str, ExtensionGrant]:
        """At most one of ``GRANTS``, each for its share of the customers."""
        roll = self.rng.random()
        for name, share, days_left in GRANTS:
            if roll < share:
                expires = None if days_left is None else self.now + timedelta(days=days_left)
                at = self.now - timedelta(days=30)
                grant = ExtensionGrant(
                    name=name, at=at, by="checkout-benchmark", reason="benchmark customer", expires_at=expires
                )
                return {name: grant}
            roll -= share
        return {}


def build_customer(
    factory: HistoryFactory,
    email: str,
    shape: tuple[int, int, float],
    extensions: dict[str, ExtensionGrant],
    settings: Settings,
) -> Customer:
    """``shape``: events, days and order share. The aggregates are the rebuild's fold of them."""
    count, days, order_share = shape
    now = factory.now
    profile_id = factory.profile_id()
    raws = factory.history(profile_id, count, days, order_share)
    events = [parse_event(raw, settings.event_rules, now) for raw in raws]
    aggregates = fold_events(events, now, settings.daily_retention_days)
    identity = normalise_identity(IdentityType.EMAIL, email)
    created = (aggregates.first_seen or now) - timedelta(days=1)
    profile = Profile(
        id=profile_id,
        identities=(identity,),
        extensions=extensions,
        aggregates=aggregates,
        version=2,
        created_at=created,
        updated_at=aggregates.last_seen or now,
    )
    key = {"_id": identity.key, "profileId": profile_id, "at": created}
    return Customer(
        email,
        count,
        aggregates.orders,
        aggregates.returned_orders,
        profile_to_document(profile),
        checkout_document(profile),
        key,
    )


@dataclass(frozen=True)
class Customers:
    ordinary: list[Customer]
    light: Customer
    heavy: Customer

    @property
    def everyone(self) -> list[Customer]:
        return [*self.ordinary, self.light, self.heavy]


def make_customers(options: Options, settings: Settings, now: datetime) -> Customers:
    factory = HistoryFactory(options.seed, now)
    progress(f"folding the events of {options.customers:,} customers and {LIGHT_EMAIL}")
    ordinary = [
        build_customer(
            factory,
            f"customer-{number}@example.com",
            (
                factory.rng.randint(*CUSTOMER_EVENTS),
                CUSTOMER_DAYS,
                factory.rng.choice(CUSTOMER_ORDER_SHARES),
            ),
            factory.grants(),
            settings,
        )
        for number in range(1, options.customers + 1)
    ]
    light = build_customer(
        factory, LIGHT_EMAIL, (LIGHT_EVENTS, CUSTOMER_DAYS, LIGHT_ORDER_SHARE), {}, settings
    )
    progress(f"folding {options.heavy_events:,} events of {HEAVY_EMAIL}")
    heavy = build_customer(
        factory, HEAVY_EMAIL, (options.heavy_events, HEAVY_DAYS, HEAVY_ORDER_SHARE), {}, settings
    )
    return Customers(ordinary, light, heavy)


async def load_customers(uri: str, database_name: str, customers: Customers) -> Layout:
    """Insert the identity keys, then the profiles and their checkout documents, into the
    partitions they route to."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(uri, tz_aware=True)
    try:
        database = client[database_name]
        layout = await load_layout(database, Layout())
        keys = PartitionedCollection(database, "identity_keys", layout.partitions)
        profiles = PartitionedCollection(database, "profiles", layout.partitions)
        await insert_routed(keys, (customer.key for customer in customers.everyone))
        await insert_routed(profiles, (customer.document for customer in customers.everyone))
        checkout = PartitionedCollection(database, "profile_checkout", layout.partitions)
        await insert_routed(checkout, (customer.checkout for customer in customers.everyone))
        return layout
    finally:
        await client.close()


# --- the gateway's set-up, over GraphQL -------------------------------------------------


async def graphql(
    http: httpx.AsyncClient,
    key: str,
    query: str,
    variables: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {key}", **(headers or {})},
    )
    body = response.json() if response.status_code == 200 else {}
    if body.get("errors") or not isinstance(body.get("data"), dict):
        raise BenchmarkError(f"the gateway answered {response.status_code}: {response.text[:500]}")
    return body["data"]


async def define_extensions(http: httpx.AsyncClient, admin_key: str) -> list[str]:
    """Define the extensions of ``fixtures/extensions.json`` (the policy's overrides name some)."""
    definitions = orjson.loads((FIXTURES / "extensions.json").read_bytes())
    for definition in definitions:
        data = await graphql(http, admin_key, DEFINE_EXTENSION, {"input": definition})
        result = data["defineExtension"]
        if "outcome" not in result:
            raise BenchmarkError(f"defineExtension {definition['name']} failed: {result}")
    return [definition["name"] for definition in definitions]


async def publish_policy(http: httpx.AsyncClient, admin_key: str, policy: dict[str, Any]) -> int:
    data = await graphql(http, admin_key, PUBLISH_POLICY, {"policy": policy})
    result = data["publishTierPolicy"]
    if result.get("__typename") != "TierPolicy":
        raise BenchmarkError(
            f"publishTierPolicy answered {result.get('__typename')}: {result.get('message', result)}"
        )
    return int(result["version"])


@dataclass(frozen=True)
class Prepared:
    storefront_key: StorefrontKey
    policy_version: int
    customers: Customers
    layout: Layout


async def prepare(gateway: Gateway, options: Options, settings: Settings, now: datetime) -> Prepared:
    timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, connect=30.0)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=timeout) as http:
        key = await create_storefront_key(http, gateway.admin_key, "checkout-benchmark")
        defined = await define_extensions(http, gateway.admin_key)
        progress(f"defined extensions: {', '.join(defined)}")
        policy = orjson.loads(options.policy.read_bytes())
        version = await publish_policy(http, gateway.admin_key, policy)
        progress(f"published and activated tier policy version {version} from {shown(options.policy)}")
    customers = make_customers(options, settings, now)
    progress(
        f"bulk-loading {len(customers.everyone):,} profiles into the gateway's store (folded as the rebuild "
        "does: tracking 100,000 events through the gateway takes over an hour on this store)"
    )
    layout = await load_customers(gateway.store_uri(), settings.database, customers)
    return Prepared(key, version, customers, layout)


# --- checking the answers ----------------------------------------------------------------

type Standing = tuple[str | None, str]  # tier name and reason


def gateway_standing(response: httpx.Response) -> Standing:
    """Tier name and reason from the gateway's answer; fails on any error."""
    body = response.json() if response.status_code == 200 else {}
    loyalty = (body.get("data") or {}).get("loyalty")
    if body.get("errors") or not isinstance(loyalty, dict):
        raise BenchmarkError(f"the loyalty query answered {response.status_code}: {response.text[:500]}")
    return (loyalty["tier"] or {}).get("name"), str(loyalty["reason"])


def bare_standing(response: httpx.Response) -> Standing:
    if response.status_code != 200:
        raise BenchmarkError(f"the bare endpoint answered {response.status_code}: {response.text[:500]}")
    answer = response.json()
    return (answer["tier"] or {}).get("name"), str(answer["reason"])


async def ask_both(
    http: httpx.AsyncClient, gateway: Gateway, bare: Server, key: StorefrontKey, customer: Customer
) -> tuple[Standing, Standing]:
    """The customer's tier and reason through the gateway and through the bare endpoint."""
    json_body = {"content-type": "application/json"}
    proof = key.proof(customer.identity)
    through_gateway = await http.post(
        f"{gateway.url}/graphql",
        content=customer.body,
        headers={**json_body, "authorization": f"Bearer {key.token}", "shopper-proof": proof},
    )
    through_bare = await http.post(f"{bare.url}/loyalty", content=customer.body, headers=json_body)
    return gateway_standing(through_gateway), bare_standing(through_bare)


async def check_answers(
    gateway: Gateway, bare: Server, key: StorefrontKey, customers: Customers
) -> Counter[str]:
    """Ask for every customer once on both paths: no errors, and the same tier and reason.

    Returns how many ordinary customers hold each tier.
    """
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS) as http:
        answers = {c.email: await ask_both(http, gateway, bare, key, c) for c in customers.everyone}
    mismatches = [
        f"{email}: gateway {through_gateway}, bare {through_bare}"
        for email, (through_gateway, through_bare) in answers.items()
        if through_gateway != through_bare
    ]
    if mismatches:
        raise BenchmarkError(
            f"the gateway and the bare endpoint disagree for {len(mismatches)} customers: {mismatches[:3]}"
        )
    return Counter(answers[c.email][0][0] or "no tier" for c in customers.ordinary)


# --- load from wrk -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What wrk sends: to ``url``, each body of the ``bodies`` file in turn, with ``headers``."""

    name: str
    url: str
    bodies: Path
    headers: tuple[str, ...]


@dataclass(frozen=True)
class Measured:
    target: str
    clients: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_version() -> str:
    completed = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    words = (completed.stdout or completed.stderr).split()
    return words[1] if len(words) > 1 else "unknown"


def run_wrk(script: Path, target: Target, clients: int, seconds: int) -> dict[str, int]:
    """One wrk run; the figures its ``done()`` printed. Fails on any error it counted."""
    command = ["wrk", "--threads", str(min(clients, 2)), "--connections", str(clients)]
    command += ["--duration", f"{seconds}s", "--timeout", f"{WRK_TIMEOUT_SECONDS}s", "--script", str(script)]
    for header in target.headers:
        command += ["--header", header]
    command += [target.url, "--", str(target.bodies)]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=seconds + WRK_GRACE_SECONDS
        )
    except subprocess.TimeoutExpired as error:
        raise BenchmarkError(f"wrk against {target.name} did not finish in {error.timeout:.0f} s") from error
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if not lines:
        raise BenchmarkError(
            f"wrk against {target.name} printed no result (exit {completed.returncode}): "
            f"{(completed.stderr or completed.stdout)[-500:]}"
        )
    figures: dict[str, int] = orjson.loads(lines[-1][len(RESULT_MARK) :])
    failed = {name: figures[name] for name in ("status", "connect", "read", "write", "timeout")}
    if any(failed.values()) or not figures["requests"]:
        raise BenchmarkError(
            f"wrk against {target.name} at {clients} clients: {figures['requests']} requests, errors "
            f"{failed} (status: answers >= 400; timeout: over {WRK_TIMEOUT_SECONDS} s)"
        )
    return figures


def measure(script: Path, target: Target, clients: int, options: Options) -> Measured:
    if options.warmup_seconds:
        run_wrk(script, target, clients, options.warmup_seconds)
    figures = run_wrk(script, target, clients, options.seconds)
    measured = Measured(
        target=target.name,
        clients=clients,
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
    )
    progress(
        f"  {target.name}, {clients_text(clients)}: p50 {measured.p50_ms:.2f} ms, "
        f"p99 {measured.p99_ms:.2f} ms, {measured.rate:,.1f} requests/s"
    )
    return measured


def interleaved(
    script: Path, pair: tuple[Target, Target], clients: Sequence[int], options: Options
) -> list[tuple[Measured, Measured]]:
    """Both targets at each number of clients, the first going first at every other step."""
    results = []
    for step, count in enumerate(clients):
        first, second = pair if step % 2 == 0 else pair[::-1]
        done = {target.name: measure(script, target, count, options) for target in (first, second)}
        results.append((done[pair[0].name], done[pair[1].name]))
    return results


def targets(scratch: Path, gateway: Gateway, bare: Server, prepared: Prepared) -> dict[str, Target]:
    """The gateway and the bare endpoint over the ordinary customers; the gateway for light and heavy."""
    customers = prepared.customers
    json_header = "Content-Type: application/json"
    key = prepared.storefront_key
    authorised = (json_header, f"Authorization: Bearer {key.token}")
    bodies = {
        "ordinary": [customer.line(key) for customer in customers.ordinary],
        "light": [customers.light.line(key)],
        "heavy": [customers.heavy.line(key)],
    }
    files = {}
    for name, lines in bodies.items():
        files[name] = scratch / f"{name}.jsonl"
        files[name].write_bytes(b"\n".join(lines) + b"\n")
    graphql_url = f"{gateway.url}/graphql"
    return {
        "gateway": Target("gateway", graphql_url, files["ordinary"], authorised),
        "bare": Target("bare", f"{bare.url}/loyalty", files["ordinary"], (json_header,)),
        "light": Target(LIGHT_EMAIL, graphql_url, files["light"], authorised),
        "heavy": Target(HEAVY_EMAIL, graphql_url, files["heavy"], authorised),
    }


# --- the run -----------------------------------------------------------------------------


@dataclass
class Run:
    options: Options
    command: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    prepared: Prepared | None = None
    tiers: Counter[str] = field(default_factory=Counter)
    paths: list[tuple[Measured, Measured]] = field(default_factory=list)
    history: list[tuple[Measured, Measured]] = field(default_factory=list)
    wrk: str = "unknown"
    load_at_start: str = field(default_factory=lambda: load_average())
    load_at_end: str = "unknown"


@contextlib.contextmanager
def running_bare(uri: str, database: str, scratch: Path) -> Iterator[Server]:
    """``bench.bare_checkout`` on a free port, in a process group of its own."""
    port = free_port()
    command = [sys.executable, "-m", "bench.bare_checkout", "--port", str(port)]
    command += ["--uri", uri, "--database", database]
    bare = Server("the bare endpoint", command, os.environ, scratch / "bare.log", port)
    try:
        bare.start(cwd=REPOSITORY)
        bare.wait_ready("/healthz")
        yield bare
    finally:
        bare.stop()


def benchmark(gateway: Gateway, run: Run) -> None:
    settings = Settings()
    scratch = gateway.data_dir.parent
    prepared = asyncio.run(prepare(gateway, run.options, settings, run.started))
    run.prepared = prepared
    with running_bare(gateway.store_uri(), settings.database, scratch) as bare:
        try:
            progress("asking for every customer once through the gateway and the bare endpoint")
            run.tiers = asyncio.run(check_answers(gateway, bare, prepared.storefront_key, prepared.customers))
            progress(f"  tiers: {dict(sorted(run.tiers.items()))}")
            script = scratch / "checkout.lua"
            script.write_text(WRK_SCRIPT.replace("{mark}", RESULT_MARK))
            chosen = targets(scratch, gateway, bare, prepared)
            progress(f"gateway and bare endpoint at {', '.join(map(str, CLIENTS))} clients")
            run.paths = interleaved(script, (chosen["gateway"], chosen["bare"]), CLIENTS, run.options)
            history_clients = ", ".join(map(str, HISTORY_CLIENTS))
            progress(f"light and heavy customer through the gateway at {history_clients} clients")
            run.history = interleaved(
                script, (chosen["light"], chosen["heavy"]), HISTORY_CLIENTS, run.options
            )
            run.load_at_end = load_average()
        except BenchmarkError:
            progress(f"--- the bare endpoint's log, last lines:\n{bare.log_tail()}")
            raise


# --- output ------------------------------------------------------------------------------


def ratio(value: float) -> str:
    return f"{value:.0%}"


def clients_text(clients: int) -> str:
    return "1 client" if clients == 1 else f"{clients} clients"


def shown(path: Path) -> str:
    """A path as the report may show it: inside the repository, or only the file's name."""
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(REPOSITORY))
    return path.name


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def milliseconds(value: float) -> str:
    return f"{value:,.2f}"


def paths_table(gateway: Measured, bare: Measured) -> list[str]:
    cells = [
        ("gateway: `loyalty` query, `POST /graphql`", gateway, ratio(gateway.rate / bare.rate)),
        ("bare endpoint: `POST /loyalty`", bare, ""),
    ]
    lines = [
        f"**{clients_text(gateway.clients)}**",
        "",
        "| path | requests | p50 ms | p99 ms | requests/s | gateway / bare requests/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, measured, share in cells:
        lines.append(
            f"| {name} | {measured.requests:,} | {milliseconds(measured.p50_ms)} | "
            f"{milliseconds(measured.p99_ms)} | {measured.rate:,.1f} | {share} |"
        )
    return [*lines, ""]


def history_table(run: Run, customers: Customers) -> list[str]:
    sizes = {LIGHT_EMAIL: customers.light, HEAVY_EMAIL: customers.heavy}
    lines = [
        "| clients | customer | events | p50 ms | p99 ms | requests/s | heavy / light p99 |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for light, heavy in run.history:
        for measured in (light, heavy):
            share = f"{heavy.p99_ms / light.p99_ms:.2f}" if measured is heavy else ""
            lines.append(
                f"| {measured.clients} | {measured.target} | {sizes[measured.target].events:,} | "
                f"{milliseconds(measured.p50_ms)} | {milliseconds(measured.p99_ms)} | {measured.rate:,.1f} | "
                f"{share} |"
            )
    return lines


def targets_text(run: Run, customers: Customers) -> list[str]:
    gateway, bare = next((g, b) for g, b in run.paths if g.clients == SHARE_CLIENTS)
    share = gateway.rate / bare.rate
    history = [(light, heavy, heavy.p99_ms / light.p99_ms) for light, heavy in run.history]
    figures = "; ".join(
        f"{clients_text(light.clients)}: {milliseconds(heavy.p99_ms)} / {milliseconds(light.p99_ms)} ms "
        f"= {value:.2f}"
        for light, heavy, value in history
    )
    return [
        f"Targets (the gateway reaches >= {SHARE_TARGET:.0%} of the bare endpoint's requests/s at "
        f"{SHARE_CLIENTS} clients; the {customers.heavy.events:,}-event customer's p99 is within "
        f"{HISTORY_TARGET - 1:.0%} of the {customers.light.events}-event customer's):",
        "",
        f"- Gateway / bare endpoint requests/s at {SHARE_CLIENTS} clients: "
        f"**{verdict(share >= SHARE_TARGET)}**, {ratio(share)} ({gateway.rate:,.1f} / {bare.rate:,.1f}).",
        f"- Heavy / light customer p99: **{verdict(all(v <= HISTORY_TARGET for _, _, v in history))}**, "
        f"{figures}.",
        "",
        *target_lines(
            [
                TargetResult(
                    f"gateway / bare endpoint requests/s at {SHARE_CLIENTS} clients",
                    ratio(share),
                    f">= {SHARE_TARGET:.0%}",
                    share >= SHARE_TARGET,
                ),
                *(
                    TargetResult(
                        f"heavy / light customer p99, {clients_text(light.clients)}",
                        f"{value:.2f}",
                        f"<= {HISTORY_TARGET:.2f}",
                        value <= HISTORY_TARGET,
                    )
                    for light, _, value in history
                ),
            ]
        ),
    ]


def customers_text(customers: Customers, tiers: Counter[str]) -> str:
    ordinary = customers.ordinary
    events = statistics.fmean(customer.events for customer in ordinary)
    orders = sum(customer.orders for customer in ordinary)
    granted = Counter(name for customer in ordinary for name in customer.document["extensions"])
    heavy = customers.heavy
    return (
        f"{len(ordinary):,} customers `customer-N@example.com` with {CUSTOMER_EVENTS[0]} to "
        f"{CUSTOMER_EVENTS[1]} events ({events:.1f} on average, {orders:,} orders in all) over the last "
        f"{CUSTOMER_DAYS} days: page and product views, adds to cart, checkouts, orders and returns; "
        f"extensions the policy overrides on: {_counts(granted) or 'none'}; tiers as the gateway answered: "
        f"{_counts(tiers)}. `{LIGHT_EMAIL}` with {customers.light.events} such events "
        f"({customers.light.orders} orders); `{HEAVY_EMAIL}` with {heavy.events:,} events over the last "
        f"{HEAVY_DAYS} days, mostly page and product views ({heavy.orders:,} orders, "
        f"{heavy.returned_orders:,} of them returned). Profile documents: {customers.light.size / 1024:.1f} "
        f"KiB BSON for the light customer, {heavy.size / 1024:.1f} KiB for the heavy one."
    )


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in sorted(counts.items()))


def render(run: Run) -> str:
    options, prepared = run.options, run.prepared
    assert prepared is not None, "the customers are loaded before the report"
    when = run.started.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Checkout: the storefront loyalty query",
        "",
        f"- Run {when} on {machine()}; {gateway_versions()}, wrk {run.wrk}; load average "
        f"{run.load_at_start} at the start, {run.load_at_end} at the end (other work on the machine slows "
        "every figure).",
        f"- Command: `{run.command}`",
        "- Gateway: `profilegate serve` (`PROFILEGATE_ENV=production`, 1 worker, uvloop and httptools, "
        "`PROFILEGATE_ACCESS_LOG=false`, the storefront rate limit raised out of the way: wrk is one "
        "client address) with its embedded store (mongoeco SQLite engine in its "
        "own process) in a fresh data directory, profiles and identity keys over "
        f"{prepared.layout.partitions} partitions; a `STOREFRONT` key; tier policy "
        f"`{shown(options.policy)}` published and activated (version {prepared.policy_version}) "
        "with the extensions of `fixtures/extensions.json` defined.",
        "- Bare endpoint: `bench/bare_checkout.py`, a Starlette route under uvicorn in a process of its own "
        "(1 worker, uvloop and httptools, no access log) on the same store: `POST /loyalty` with the same "
        "body, no authentication, no GraphQL; `normalise_identity`, `find_one` of the identity key, "
        "`find_one` of the profile's checkout document (`profile_checkout`), `evaluate_loyalty` over "
        "`unpack_spend` and `extensions_from_document` against the policy read at start-up, orjson.",
        "- Customers were bulk-loaded with the same fold the rebuild uses (`fold_events` over "
        "`parse_event`-ed events, written with `profile_to_document`, with their checkout documents "
        "(`checkout_document`) and identity keys, into their partitions), because tracking 100,000 "
        "events through the gateway takes over an hour on this "
        f"store; the event log holds none of them. {customers_text(prepared.customers, run.tiers)}",
        f"- Load: wrk in a process of its own, threads = min(clients, 2), one keep-alive connection per "
        f"client, {options.seconds} s per run after an uncounted {options.warmup_seconds} s warm-up; "
        "requests rotate over the customers' bodies; p50 and p99 from wrk's latency histogram, printed by "
        "the script's `done()`. At each number of clients the gateway and the bare endpoint run one after "
        "the other, alternating which goes first. Before the runs every customer was asked once on both "
        "paths: no errors, the same tier and reason. No run had an answer >= 400 or a socket error. The "
        "load generator, the gateway, the bare endpoint and the store share the machine.",
        "",
        "### Gateway against the bare endpoint",
        "",
    ]
    for gateway, bare in run.paths:
        lines += paths_table(gateway, bare)
    lines += [
        "### History size: the same query for a light and a heavy customer (gateway)",
        "",
        *history_table(run, prepared.customers),
        "",
        *targets_text(run, prepared.customers),
    ]
    return "\n".join(lines) + "\n"


def command_line(argv: Sequence[str] | None) -> str:
    arguments = list(sys.argv[1:] if argv is None else argv)
    return shlex.join([".venv/bin/python", "-m", "bench.checkout", *arguments])


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    if shutil.which("wrk") is None:
        progress(
            "error: the load generator wrk is not installed: install the `wrk` package (apt-get install wrk)"
        )
        return 1
    run = Run(options, command_line(argv), wrk=wrk_version())
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM as on Ctrl+C
    try:
        environment = {"PROFILEGATE_ENV": "production", "PROFILEGATE_ACCESS_LOG": "false"} | UNLIMITED
        with running_gateway("profilegate-checkout-", 1, environment) as gateway:
            progress(f"gateway ready at {gateway.url}")
            try:
                benchmark(gateway, run)
            except BenchmarkError:
                progress(f"--- the gateway's log, last lines:\n{gateway.log_tail()}")
                raise
    except KeyboardInterrupt:
        progress("interrupted: the gateway and the bare endpoint were stopped and their data removed")
        return 130
    except BenchmarkError as error:
        progress(f"error: {error}")
        return 1
    publish(render(run), options.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
