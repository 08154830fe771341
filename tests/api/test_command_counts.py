"""Store round trips per hot operation, pinned by command name, in the layout under test.

An operation's latency on MongoDB is about (store round trips x network round-trip time) + the
gateway's CPU (DESIGN sec. 8), so every round trip on a hot path is a cost a user pays. The
counts are deterministic: each operation runs once after a warm-up (API keys, the tier policy
and the segment catalogue cached, as in a running gateway), and the commands it sent are taken
from the gateway's own store-command listener (the one behind
``profilegate_store_command_duration_seconds``), keeping only the commands sent on behalf of
the request: the feed follower's and the metrics sampler's background reads are not the
operation's. Lowering a number is the point; edit the tables below on purpose.
"""

import contextlib
import contextvars
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from profilegate.api import prometheus
from profilegate.app import create_app
from profilegate.settings import Settings
from profilegate.storage.layout import LayoutKind
from tests.api.test_loyalty import publish_default
from tests.conftest import TEST_LAYOUT_KIND
from tests.gateway import FrozenClock, GatewayClient, StorefrontKey, running
from tests.shopper_proofs import proof_for

# Store commands per operation, by command name, one table per layout. batch_existing is
# BATCH_EVENTS events over BATCH_CUSTOMERS known customers in one request, batch_new
# BATCH_EVENTS events of as many new customers.
EMBEDDED_COUNTS: dict[str, dict[str, int]] = {
    "checkout_known": {"find": 1},
    "checkout_guest": {"find": 1},
    "event_existing": {"find": 2, "findAndModify": 2, "insert": 2, "update": 1},
    "event_new": {"find": 2, "findAndModify": 2, "insert": 4, "update": 1},
    "batch_existing": {
        "createIndexes": 2,
        "find": 8,
        "findAndModify": 2,
        "insert": 4,
        "listIndexes": 1,
        "update": 4,
    },
    "batch_new": {
        "createIndexes": 2,
        "find": 8,
        "findAndModify": 2,
        "insert": 13,
        "listIndexes": 1,
        "update": 4,
    },
    "identify": {"find": 7, "findAndModify": 2, "insert": 5, "update": 1},
    "set_extension": {"find": 3, "findAndModify": 2, "insert": 2, "update": 3},
}
MONGODB_COUNTS: dict[str, dict[str, int]] = {
    "checkout_known": {"find": 1},
    "checkout_guest": {"find": 1},
    "event_existing": {"aggregate": 1, "findAndModify": 1, "insert": 2, "update": 1},
    "event_new": {"aggregate": 1, "findAndModify": 1, "insert": 4, "update": 1},
    "batch_existing": {"aggregate": 1, "findAndModify": 1, "insert": 2, "update": 1},
    "batch_new": {"aggregate": 1, "findAndModify": 1, "insert": 4, "update": 1},
    "identify": {"find": 7, "findAndModify": 2, "insert": 5, "update": 1},
    "set_extension": {"find": 3, "findAndModify": 2, "insert": 2, "update": 3},
}
PINNED = {LayoutKind.EMBEDDED: EMBEDDED_COUNTS, LayoutKind.MONGODB: MONGODB_COUNTS}[TEST_LAYOUT_KIND]

# In the embedded layout a batch costs a command per partition its profiles fall in, and
# profile ids are random: 40 customers (and 100 new ones) touch all 4 test partitions but
# with a chance of about 4 x 0.75^40 = 4e-5, so the count is the same every run.
BATCH_EVENTS = 100
BATCH_CUSTOMERS = 40
LOYALTY = "query($ref: ProfileRef!) { loyalty(ref: $ref) { tier { name } reason validUntil } }"
IDENTIFY = """
mutation($anon: String, $identities: [IdentityInput!]!) {
  identify(anonymousId: $anon, identities: $identities) { __typename }
}
"""
SET_EXTENSION = """
mutation($ref: ProfileRef!) {
  setExtension(ref: $ref, name: "employee", reason: "staff") { __typename }
}
"""

_counting: contextvars.ContextVar[Counter[str] | None] = contextvars.ContextVar("counting", default=None)


class Operations:
    """The gateway under test, with its keys, and the commands each call sends to the store."""

    def __init__(
        self, gateway: GatewayClient, storefront: StorefrontKey, ingest: str, clock: FrozenClock
    ) -> None:
        self.gateway = gateway
        self.storefront = storefront
        self.ingest = ingest
        self.clock = clock
        self._sequence = 0

    def event_id(self) -> str:
        self._sequence += 1
        return f"count-{self._sequence}"

    def view(self, email: str) -> dict[str, Any]:
        return {
            "id": self.event_id(),
            "type": "product_view",
            "at": "2026-11-20T09:00:00Z",
            "channel": "web",
            "identity": {"type": "EMAIL", "value": email},
            "properties": {"sku": "A1", "category": "shoes"},
        }

    async def track(self, *events: dict[str, Any]) -> None:
        response = await self.gateway.http.post(
            "/v1/track", json={"events": list(events)}, headers={"authorization": f"Bearer {self.ingest}"}
        )
        assert response.json()["accepted"] == len(events), response.json()

    async def checkout(self, email: str) -> None:
        ref = {"identity": {"type": "EMAIL", "value": email}}
        proof = proof_for(self.storefront, "EMAIL", email, self.clock.now)
        result = await self.gateway.execute(LOYALTY, {"ref": ref}, key=self.storefront.token, headers=proof)
        assert result.data["loyalty"]["reason"]

    async def identify(self, anon: str, email: str) -> None:
        identities = [{"type": "EMAIL", "value": email}]
        result = await self.gateway.execute(IDENTIFY, {"anon": anon, "identities": identities})
        assert result.data["identify"]["__typename"] == "Identified"

    async def set_extension(self, email: str) -> None:
        ref = {"identity": {"type": "EMAIL", "value": email}}
        result = await self.gateway.execute(SET_EXTENSION, {"ref": ref})
        assert result.data["setExtension"]["__typename"] == "ExtensionChanged"

    async def commands(self, operation: Callable[[], Awaitable[None]]) -> dict[str, int]:
        """The store commands ``operation`` sent, by command name."""
        sent: Counter[str] = Counter()
        token = _counting.set(sent)
        try:
            await operation()
        finally:
            _counting.reset(token)
        return dict(sorted(sent.items()))


@contextlib.contextmanager
def request_commands_counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The gateway's store-command observer, also telling the counter of the request that sent it."""
    observe = prometheus.observe_store_command

    def observe_and_count(command: str, seconds: float) -> None:
        observe(command, seconds)
        sent = _counting.get()
        if sent is not None:
            sent[command] += 1

    monkeypatch.setattr(prometheus, "observe_store_command", observe_and_count)
    yield


@pytest.fixture
async def operations(
    settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Operations]:
    cached = settings.model_copy(update={"key_cache_seconds": 3600.0})
    with request_commands_counted(monkeypatch):
        async with running(create_app(cached, clock=clock)) as http:
            gateway = GatewayClient(http)
            await publish_default(gateway)
            storefront = await gateway.create_storefront_key("shop")
            ingest = await gateway.create_key("INGEST", "backend")
            ops = Operations(gateway, storefront, ingest, clock)
            await warm_up(ops)
            yield ops


async def warm_up(ops: Operations) -> None:
    """Every key used once and the caches filled, so that the counts are those of a running gateway."""
    await ops.track(ops.view("known@example.com"))
    await ops.checkout("known@example.com")
    await ops.checkout("warm-guest@example.com")
    await ops.set_extension("known@example.com")


def assert_pinned(operation: str, counted: dict[str, int]) -> None:
    pinned = PINNED.get(operation)
    assert counted == pinned, (
        f"{operation} in the {TEST_LAYOUT_KIND.value} layout sends {counted} "
        f"({sum(counted.values())} store commands), pinned {pinned} "
        f"({sum((pinned or {}).values())}): this change added or removed a round trip on a hot path; "
        f"update the pinned number in tests/api/test_command_counts.py on purpose"
    )


async def test_checkout_of_a_known_customer(operations: Operations) -> None:
    counted = await operations.commands(lambda: operations.checkout("known@example.com"))
    assert_pinned("checkout_known", counted)


async def test_checkout_of_a_guest(operations: Operations) -> None:
    counted = await operations.commands(lambda: operations.checkout("guest@example.com"))
    assert_pinned("checkout_guest", counted)


async def test_one_event_of_an_existing_profile(operations: Operations) -> None:
    event = operations.view("known@example.com")
    counted = await operations.commands(lambda: operations.track(event))
    assert_pinned("event_existing", counted)


async def test_first_event_of_a_new_customer(operations: Operations) -> None:
    event = operations.view("new@example.com")
    counted = await operations.commands(lambda: operations.track(event))
    assert_pinned("event_new", counted)


async def test_a_batch_over_existing_profiles(operations: Operations) -> None:
    emails = [f"batch-{n}@example.com" for n in range(BATCH_CUSTOMERS)]
    await operations.track(*(operations.view(email) for email in emails))
    events = [operations.view(emails[n % BATCH_CUSTOMERS]) for n in range(BATCH_EVENTS)]
    counted = await operations.commands(lambda: operations.track(*events))
    assert_pinned("batch_existing", counted)


async def test_a_batch_of_new_customers(operations: Operations) -> None:
    events = [operations.view(f"fresh-{n}@example.com") for n in range(BATCH_EVENTS)]
    counted = await operations.commands(lambda: operations.track(*events))
    assert_pinned("batch_new", counted)


async def test_identify_links_an_anonymous_visitor(operations: Operations) -> None:
    counted = await operations.commands(lambda: operations.identify("anon-1", "visitor@example.com"))
    assert_pinned("identify", counted)


async def test_set_extension_on_a_known_customer(operations: Operations) -> None:
    await operations.track(operations.view("staff@example.com"))
    counted = await operations.commands(lambda: operations.set_extension("staff@example.com"))
    assert_pinned("set_extension", counted)


async def test_the_counts_are_the_same_every_time(operations: Operations) -> None:
    first = await operations.commands(lambda: operations.checkout("known@example.com"))
    again = await operations.commands(lambda: operations.checkout("known@example.com"))
    assert first == again == PINNED["checkout_known"]
