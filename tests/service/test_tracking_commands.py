"""Store round trips of tracking through ``POST /v1/track``, pinned per layout.

Counted as the gateway's store-command metric counts them (every command that got a reply,
by name), but only the commands sent while the request is handled: a pymongo listener counts
in the request's context alone, so the feed follower's poll and the change stream's reopening
(background tasks of the gateway) do not blur the count. The counts are deterministic (no
timing): a change that adds a round trip to tracking fails here and must change the pinned
number on purpose. The targets are those of the MongoDB layout (production): one event for a
known customer <= 5, a new customer's first event <= 7, a batch of known customers <= 1.5
per event, a batch of new customers <= 5 per event. The shop's day rollups cost a request
nothing: the gateway writes them behind, once a second for all requests, off the request
(``service.shop_rollups``). An order that redeems an issued coupon costs one command more
(the coupon's conditional update); orders without one cost nothing more.
"""

import contextvars
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pymongo import monitoring

from profilegate.app import create_app
from profilegate.settings import Settings
from profilegate.storage.layout import LayoutKind
from tests.conftest import TEST_LAYOUT_KIND
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient, running
from tests.service.raw_events import email_ref, event

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
MONGODB = TEST_LAYOUT_KIND is LayoutKind.MONGODB
_counting: contextvars.ContextVar[Counter[str] | None] = contextvars.ContextVar("counting", default=None)


class _RequestCommands(monitoring.CommandListener):
    """Counts each replied command into the counter of the context it was sent from, if any."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._count(event.command_name)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._count(event.command_name)

    def _count(self, name: str) -> None:
        counts = _counting.get()
        if counts is not None:
            counts[name] += 1


# Listeners registered here reach every client made afterwards, the gateway's among them.
monitoring.register(_RequestCommands())


@pytest.fixture
async def gateway(settings: Settings, clock: FrozenClock) -> AsyncIterator[GatewayClient]:
    """The gateway, with segments and the tier policy cached for longer than a test takes."""
    cached = settings.model_copy(update={"segment_cache_seconds": 600, "tier_policy_cache_seconds": 600})
    async with running(create_app(cached, clock=clock)) as http:
        yield GatewayClient(http)


@pytest.fixture(autouse=True)
def not_counting() -> Iterator[None]:
    yield
    _counting.set(None)


async def commands_of_track(gateway: GatewayClient, events: list[dict[str, Any]]) -> Counter[str]:
    """The store commands one ``POST /v1/track`` of ``events`` sent, by name; all accepted."""
    counts: Counter[str] = Counter()
    _counting.set(counts)
    response = await gateway.http.post("/v1/track", json={"events": events}, headers=ADMIN)
    _counting.set(None)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(events), response.json()
    return counts


def view(event_id: str, customer: int, now: datetime) -> dict[str, Any]:
    at = now - timedelta(minutes=1)
    return event(
        event_id, "product_view", at, email_ref(f"c{customer}@example.com"), sku="A1", category="shoes"
    )


async def test_one_event_for_a_known_customer(gateway: GatewayClient, now: datetime) -> None:
    await commands_of_track(gateway, [view("first", 0, now)])
    counts = await commands_of_track(gateway, [view("e1", 0, now)])
    if MONGODB:
        # keys joined to profiles, the log, the profile, the feed's counter and the feed
        assert counts == {"aggregate": 1, "insert": 2, "update": 1, "findAndModify": 1}
    else:
        # keys and profiles are read apart; the log's segment reserves its slots
        assert counts == {"find": 2, "insert": 2, "update": 1, "findAndModify": 2}


async def test_first_event_of_a_new_customer(gateway: GatewayClient, now: datetime) -> None:
    await commands_of_track(gateway, [view("first", 0, now)])
    counts = await commands_of_track(gateway, [view("e1", 1, now)])
    if MONGODB:
        # the key and its tombstone, the claim, the empty profile, the log, the profile's update,
        # the feed's counter, the feed
        assert counts == {"aggregate": 1, "insert": 4, "update": 1, "findAndModify": 1}
    else:
        assert counts == {"find": 2, "insert": 4, "update": 1, "findAndModify": 2}


async def test_a_batch_for_known_customers(gateway: GatewayClient, now: datetime) -> None:
    await commands_of_track(gateway, [view(f"first-{c}", c, now) for c in range(40)])
    counts = await commands_of_track(gateway, [view(f"e{i}", i % 40, now) for i in range(100)])
    if MONGODB:
        assert counts == {"aggregate": 1, "insert": 2, "update": 1, "findAndModify": 1}
    else:
        # each of the 4 partitions of keys, profiles (and the updates) once; the log and the
        # feed each begin a segment in this batch
        assert counts == {
            "find": 8,
            "insert": 4,
            "update": 4,
            "findAndModify": 2,
            "createIndexes": 2,
            "listIndexes": 1,
        }


async def test_a_batch_of_new_customers(gateway: GatewayClient, now: datetime) -> None:
    await commands_of_track(gateway, [view("first", 1000, now)])
    counts = await commands_of_track(gateway, [view(f"e{i}", i, now) for i in range(100)])
    if MONGODB:
        assert counts == {"aggregate": 1, "insert": 4, "update": 1, "findAndModify": 1}
    else:
        # keys and profiles are claimed, inserted and updated partition by partition
        assert counts == {
            "find": 8,
            "insert": 13,
            "update": 4,
            "findAndModify": 2,
            "createIndexes": 2,
            "listIndexes": 1,
        }


ISSUE = """
mutation($ref: ProfileRef!, $at: DateTime!) {
  defineCouponCampaign(name: "spring") { __typename }
  issueCoupon(ref: $ref, campaign: "spring", channel: EMAIL, expiresAt: $at) {
    ... on CouponIssued { coupon { code } }
  }
}
"""


def coupon_order(
    event_id: str, code: str, now: datetime, ref: dict[str, Any] | None = None
) -> dict[str, Any]:
    items = [{"sku": "A1", "price": "50.00", "quantity": 1}]
    properties = {"orderId": f"order-{event_id}", "total": "50.00", "currency": "EUR", "items": items}
    return event(
        event_id,
        "order_completed",
        now,
        ref or {},
        "store",
        **properties,
        couponCode=code,
    )


async def issued_code(gateway: GatewayClient, now: datetime) -> str:
    await commands_of_track(gateway, [view("first", 0, now)])
    variables = {"ref": email_ref("c0@example.com"), "at": (now + timedelta(days=30)).isoformat()}
    code = (await gateway.execute(ISSUE, variables)).data["issueCoupon"]["coupon"]["code"]
    assert isinstance(code, str)
    return code


async def test_an_order_that_redeems_a_coupon_costs_one_command_more(
    gateway: GatewayClient, now: datetime
) -> None:
    code = await issued_code(gateway, now)
    ann = email_ref("c0@example.com")
    plain = await commands_of_track(gateway, [coupon_order("o0", "WELCOME10", now, ann)])
    counts = await commands_of_track(gateway, [coupon_order("o1", code, now, ann)])
    # a code that is not one of ours costs nothing; an issued one its conditional update
    assert counts == plain + Counter({"findAndModify": 1})
    if MONGODB:
        # an order also rewrites the checkout copies of the profile (its spend changed)
        assert counts == {"aggregate": 1, "insert": 2, "update": 3, "findAndModify": 2}
    else:
        assert counts == {"find": 2, "insert": 2, "update": 3, "findAndModify": 3}


async def test_a_store_purchase_named_by_its_coupon_alone(gateway: GatewayClient, now: datetime) -> None:
    code = await issued_code(gateway, now)
    counts = await commands_of_track(gateway, [coupon_order("o1", code, now)])
    # the coupon's update names the profile, which is then read by id (no identity key to read)
    if MONGODB:
        assert counts == {"find": 1, "insert": 2, "update": 3, "findAndModify": 2}
    else:
        assert counts == {"find": 1, "insert": 2, "update": 3, "findAndModify": 3}
