"""The checkout in store commands, counted by the gateway's own metric, in both layouts, and the
checkout copy carried on the identity keys kept current by every write that changes a tier.

A checkout by identity is the one ``_id`` read of the identity's key (it carries what the tier is
computed from); a guest's is the one read that finds nothing. The counts are deterministic: the
feed follower's poll is set beyond the test's length, every cache is warmed first, and a command
a background task sent meanwhile (the change stream's retry in the MongoDB layout) is told apart
by a command listener, while the gateway's metric must have grown by exactly what it recorded.
"""

import asyncio
import contextlib
import contextvars
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from pymongo import monitoring

from profilegate.app import create_app
from profilegate.settings import Settings
from profilegate.storage.layout import LayoutKind
from profilegate.storage.store import open_client
from tests.api.test_extensions import REMOVE, SET
from tests.api.test_gdpr import ERASE
from tests.api.test_identify import IDENTIFY
from tests.api.test_loyalty import FIXTURE, LOYALTY, PUBLISH, define_fixture_extensions
from tests.conftest import TEST_PARTITIONS
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient, StorefrontKey, running
from tests.shopper_proofs import proof_for

SCRAPE = {"authorization": "Bearer scrape-token"}
COMMANDS = "profilegate_store_command_duration_seconds_count"
SETTLE_ATTEMPTS = 50
MEASURE_ATTEMPTS = 5
# Store commands of one checkout: the MongoDB layout meets the target (1); the embedded layout
# reads the same one key (its collection is one of the partitions).
PINNED = {LayoutKind.MONGODB: {"known": 1, "guest": 1}, LayoutKind.EMBEDDED: {"known": 1, "guest": 1}}


type Counts = dict[str, float]


@dataclass
class Recorder(monitoring.CommandListener):
    """The commands sent to one database while recording, each with whether it was sent on
    behalf of the recording code (pymongo's listeners are global, and run in the sender's task)."""

    database: str | None = None
    sent: list[tuple[str, bool]] = field(default_factory=list)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database:
            self.sent.append((event.command_name, ON_BEHALF.get()))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @contextlib.contextmanager
    def recording(self, database: str) -> Iterator[list[tuple[str, bool]]]:
        self.database, self.sent = database, []
        token = ON_BEHALF.set(True)
        try:
            yield self.sent
        finally:
            ON_BEHALF.reset(token)
            self.database = None


ON_BEHALF = contextvars.ContextVar("on_behalf", default=False)
RECORDER = Recorder()
monitoring.register(RECORDER)  # for the clients created from now on, the gateway's included


def tally(sent: list[tuple[str, bool]]) -> Counts:
    return dict(Counter(name for name, _ in sent))


def difference(after: Counts, before: Counts) -> Counts:
    return {
        name: count - before.get(name, 0) for name, count in after.items() if count != before.get(name, 0)
    }


@dataclass
class Shop:
    """A gateway with the default tier policy and a storefront key, in one layout."""

    gateway: GatewayClient
    storefront: StorefrontKey
    clock: FrozenClock
    layout: LayoutKind
    store_uri: str
    database: str

    async def tier(self, kind: str, value: str) -> str | None:
        """The tier the storefront's checkout answers for the identity."""
        ref = {"identity": {"type": kind, "value": value}}
        proof = proof_for(self.storefront, kind, value, self.clock.now)
        result = await self.gateway.execute(LOYALTY, {"ref": ref}, key=self.storefront.token, headers=proof)
        tier = result.data["loyalty"]["tier"]
        return None if tier is None else str(tier["name"])

    async def commands(self) -> Counts:
        response = await self.gateway.http.get("/metrics", headers=SCRAPE)
        assert response.status_code == 200, response.text
        return {
            sample.labels["command"]: sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == COMMANDS
        }

    async def settled(self) -> tuple[Counts, Counts]:
        """The command counts once the feed follower has caught up with the writes so far, and
        what a scrape of ``/metrics`` costs itself (it reads the feed's head for the lag gauge):
        scrapes in a row that differ by the same commands, three times."""
        last, costs = await self.commands(), list[Counts]()
        for _ in range(SETTLE_ATTEMPTS):
            await asyncio.sleep(0.02)
            now = await self.commands()
            costs = [*costs[-2:], difference(now, last)]
            if len(costs) == 3 and costs[0] == costs[1] == costs[2]:
                return now, costs[0]
            last = now
        raise AssertionError("the gateway kept sending store commands with nothing to do")

    async def commands_of_checkout(self, kind: str, value: str) -> Counts:
        """The store commands the checkout sent, by name. The gateway's metric grows by exactly
        those plus any a background task (the feed follower) sent meanwhile, which the recorder
        tells apart: they were not sent on the request's behalf."""
        for _ in range(MEASURE_ATTEMPTS):
            before, scrape = await self.settled()
            with RECORDER.recording(self.database) as sent:
                await self.tier(kind, value)
            metric = difference(difference(await self.commands(), before), scrape)
            if metric == tally(sent):  # nothing else ran meanwhile
                return tally([(name, mine) for name, mine in sent if mine])
        raise AssertionError("background commands kept coinciding with the checkout")

    async def track(self, *events: dict[str, Any]) -> None:
        response = await self.gateway.http.post(
            "/v1/track", json={"events": list(events)}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert response.json()["accepted"] == len(events), response.text

    async def mutate(self, document: str, variables: dict[str, Any], field: str) -> dict[str, Any]:
        result = await self.gateway.execute(document, variables)
        payload = result.data[field]
        assert isinstance(payload, dict), result.body
        return payload

    async def identity_key_documents(self, key: str) -> list[dict[str, Any]]:
        """Every document keyed by ``key`` in any collection of the identity keys."""
        client = open_client(self.store_uri)
        try:
            database = client[self.database]
            names = [n for n in await database.list_collection_names() if n.startswith("identity_keys")]
            return [found for n in names if (found := await database[n].find_one({"_id": key}))]
        finally:
            await client.close()


def layout_settings(kind: LayoutKind, store_uri: str, database: str) -> Settings:
    partitioned = kind is LayoutKind.EMBEDDED
    return Settings(
        mongodb_uri=store_uri,
        database=database,
        admin_key=ADMIN_KEY,
        storage_layout=kind,
        store_partitions=TEST_PARTITIONS if partitioned else None,
        event_segment_size=100 if partitioned else None,
        metrics_token=SecretStr("scrape-token"),
        # A long poll and long caches: nothing reads the store in the background while counting.
        feed_poll_seconds=60.0,
        shop_rollup_flush_seconds=60.0,
        shop_rollup_silent_seconds=600.0,
        feed_hole_seconds=0.05,
        key_cache_seconds=600.0,
        tier_policy_cache_seconds=600.0,
    )


@pytest.fixture(params=[LayoutKind.MONGODB, LayoutKind.EMBEDDED], ids=lambda kind: str(kind.value))
async def shop(
    request: pytest.FixtureRequest, store_uri: str, database_name: str, clock: FrozenClock
) -> AsyncIterator[Shop]:
    kind: LayoutKind = request.param
    async with running(create_app(layout_settings(kind, store_uri, database_name), clock=clock)) as http:
        gateway = GatewayClient(http)
        await define_fixture_extensions(gateway)
        published = await gateway.execute(PUBLISH, {"policy": FIXTURE, "activate": True})
        assert published.data["publishTierPolicy"]["__typename"] == "TierPolicy"
        storefront = await gateway.create_storefront_key("shop-web")
        opened = Shop(gateway, storefront, clock, kind, store_uri, database_name)
        await opened.tier("EMAIL", "warm-up@example.com")  # the storefront key is verified and cached
        yield opened
    cleanup = open_client(store_uri)
    await cleanup.drop_database(database_name)
    await cleanup.close()


def order(event_id: str, total: str, at: str, **who: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "order_completed",
        "at": at,
        "channel": "web",
        **(who or {"identity": {"type": "EMAIL", "value": "ann@example.com"}}),
        "properties": {
            "orderId": f"o-{event_id}",
            "total": total,
            "currency": "EUR",
            "items": [{"sku": "A1", "category": "coats", "price": total, "quantity": 1}],
        },
    }


UPSERT = "mutation($ref: ProfileRef!) { upsertProfile(input: {ref: $ref}) { __typename } }"
KEPT = "2026-09-01T10:00:00Z"  # past its 30-day return window on the tests' day


async def test_a_known_customers_checkout_is_one_store_command(shop: Shop) -> None:
    await shop.track(order("e-1", "1200.00", KEPT))

    commands = await shop.commands_of_checkout("EMAIL", "ann@example.com")

    assert commands == {"find": PINNED[shop.layout]["known"]}
    assert await shop.tier("EMAIL", "ann@example.com") == "GOLD"


async def test_a_guest_checkout_is_one_store_command(shop: Shop) -> None:
    await shop.track(order("e-1", "1200.00", KEPT))

    commands = await shop.commands_of_checkout("EMAIL", "guest@example.com")

    assert commands == {"find": PINNED[shop.layout]["guest"]}
    assert await shop.tier("EMAIL", "guest@example.com") == "MEMBER"


async def test_an_order_raises_the_tier_at_the_next_checkout(shop: Shop) -> None:
    await shop.track(order("e-1", "300.00", KEPT))
    assert await shop.tier("EMAIL", "ann@example.com") == "SILVER"

    await shop.track(order("e-2", "900.00", KEPT))

    assert await shop.tier("EMAIL", "ann@example.com") == "GOLD"
    assert await shop.commands_of_checkout("EMAIL", "ann@example.com") == {"find": 1}


async def test_setting_and_removing_an_extension_shows_at_the_next_checkout(shop: Shop) -> None:
    await shop.track(order("e-1", "1200.00", KEPT))
    ref = {"identity": {"type": "EMAIL", "value": "ann@example.com"}}
    variables = {"ref": ref, "name": "no-reward", "reason": "abuse"}

    assert (await shop.mutate(SET, variables, "setExtension"))["__typename"] == "ExtensionChanged"
    assert await shop.tier("EMAIL", "ann@example.com") is None
    assert (await shop.mutate(REMOVE, variables, "removeExtension"))["__typename"] == "ExtensionChanged"
    assert await shop.tier("EMAIL", "ann@example.com") == "GOLD"
    assert await shop.commands_of_checkout("EMAIL", "ann@example.com") == {"find": 1}


async def test_time_alone_ends_an_extension_and_counts_an_order_past_its_return_window(shop: Shop) -> None:
    """Nothing is written: the carried payload holds what the tier is computed from, and the
    checkout evaluates it at the moment it is asked."""
    await shop.track(order("e-1", "1200.00", "2026-11-15T10:00:00Z"))  # inside its return window
    ref = {"identity": {"type": "EMAIL", "value": "ann@example.com"}}
    expires = (shop.clock.now.replace(microsecond=0) + timedelta(days=2)).isoformat()
    variables = {"ref": ref, "name": "status-match-gold", "reason": "match", "expiresAt": expires}
    assert (await shop.mutate(SET, variables, "setExtension"))["__typename"] == "ExtensionChanged"
    assert await shop.tier("EMAIL", "ann@example.com") == "GOLD"  # the floor

    shop.clock.advance(days=3)
    assert await shop.tier("EMAIL", "ann@example.com") == "MEMBER"  # floor gone, order still pending

    shop.clock.advance(days=30)
    assert await shop.tier("EMAIL", "ann@example.com") == "GOLD"  # the order counts now
    assert await shop.commands_of_checkout("EMAIL", "ann@example.com") == {"find": 1}


async def test_after_a_merge_the_losers_identity_answers_the_winners_tier_in_one_command(
    shop: Shop,
) -> None:
    await shop.track(order("e-1", "300.00", KEPT))  # ann, known by e-mail: the older profile
    shop.clock.advance(minutes=1)
    visitor = {"anonymousId": "visitor-0f3a6c2e-8d4b-4e1a-9c7f"}
    await shop.track(order("e-2", "900.00", KEPT, **visitor))
    assert await shop.tier("ANONYMOUS_ID", "visitor-0f3a6c2e-8d4b-4e1a-9c7f") == "SILVER"

    identities = [{"type": "EMAIL", "value": "ann@example.com"}]
    identified = await shop.mutate(
        IDENTIFY, {"anon": "visitor-0f3a6c2e-8d4b-4e1a-9c7f", "identities": identities}, "identify"
    )
    assert len(identified["mergedProfileIds"]) == 1

    assert await shop.tier("ANONYMOUS_ID", "visitor-0f3a6c2e-8d4b-4e1a-9c7f") == "GOLD"
    assert await shop.tier("EMAIL", "ann@example.com") == "GOLD"
    assert await shop.commands_of_checkout("ANONYMOUS_ID", "visitor-0f3a6c2e-8d4b-4e1a-9c7f") == {"find": 1}
    assert await shop.commands_of_checkout("EMAIL", "ann@example.com") == {"find": 1}


async def test_an_erased_identity_leaves_no_key_and_checks_out_as_a_guest(shop: Shop) -> None:
    await shop.track(order("e-1", "1200.00", KEPT))
    assert await shop.identity_key_documents("email:ann@example.com") != []
    ref = {"identity": {"type": "EMAIL", "value": "ann@example.com"}}

    erased = await shop.mutate(ERASE, {"ref": ref, "reason": "customer request"}, "eraseProfile")

    assert erased["__typename"] == "ProfileErased"
    assert await shop.identity_key_documents("email:ann@example.com") == []
    assert await shop.tier("EMAIL", "ann@example.com") == "MEMBER"


async def test_a_newly_activated_policy_applies_at_the_next_checkout(shop: Shop) -> None:
    await shop.track(order("e-1", "300.00", KEPT))
    assert await shop.tier("EMAIL", "ann@example.com") == "SILVER"
    cheaper = json.loads(json.dumps(FIXTURE))
    cheaper["tiers"][2]["threshold"] = "200.00"
    cheaper["tiers"][1]["threshold"] = "100.00"

    published = await shop.mutate(PUBLISH, {"policy": cheaper, "activate": True}, "publishTierPolicy")

    assert published["version"] == 2
    assert await shop.tier("EMAIL", "ann@example.com") == "GOLD"
    assert await shop.commands_of_checkout("EMAIL", "ann@example.com") == {"find": 1}


async def test_a_customer_created_without_any_event_checks_out_in_one_command(shop: Shop) -> None:
    """The keys of a new profile are created with its payload: no later write is needed."""
    ref = {"identity": {"type": "CUSTOMER_ID", "value": "C-1"}}
    await shop.mutate(UPSERT, {"ref": ref}, "upsertProfile")

    assert await shop.commands_of_checkout("CUSTOMER_ID", "C-1") == {"find": 1}
    assert await shop.tier("CUSTOMER_ID", "C-1") == "MEMBER"
