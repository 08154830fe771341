"""``shopMetrics`` over GraphQL: shop days of the shop's time zone, across a DST change."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from profilegate.service.segments import SegmentCatalogue, refresh_segments
from profilegate.settings import Settings
from profilegate.storage.store import open_client
from tests.conftest import prepare_for_test
from tests.gateway import GatewayClient

METRICS = """
query($from: Date!, $to: Date!, $granularity: Granularity!, $channel: Channel) {
  shopMetrics(from: $from, to: $to, granularity: $granularity, channel: $channel) {
    total {
      from to visitors buyers orders conversionRate
      revenue { amount currency } averageOrderValue { amount currency }
      netAverageOrderValue { amount } returns returnRate newCustomers returningCustomers
    }
    periods { from to visitors buyers orders }
    byChannel { channel metrics { visitors orders } }
  }
}
"""
# Berlin leaves summer time on 2026-10-25 at 03:00 CEST: that shop day lasts 25 hours, from
# 2026-10-24T22:00Z to 2026-10-25T23:00Z.
FIRST_MINUTES_OF_THE_DAY = "2026-10-24T22:30:00Z"  # 00:30 CEST
LAST_HOUR_OF_THE_DAY = "2026-10-25T22:30:00Z"  # 23:30 CET, 24:30 after its start
NEXT_DAY = "2026-10-25T23:30:00Z"  # 00:30 CET on the 26th
DAY_BEFORE = "2026-10-24T21:30:00Z"  # 23:30 CEST on the 24th
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"shop_time_zone": "Europe/Berlin"})


def view(event_id: str, who: str, at: str, channel: str = "web") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "page_view",
        "at": at,
        "channel": channel,
        "anonymousId": who,
        "properties": {"url": "https://shop.example/"},
    }


def order(event_id: str, who: str, at: str, total: str = "50.00", channel: str = "web") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "order_completed",
        "at": at,
        "channel": channel,
        "anonymousId": who,
        "properties": {
            "orderId": f"o-{event_id}",
            "total": total,
            "currency": "EUR",
            "items": [{"sku": "A1", "price": total, "quantity": 1}],
        },
    }


async def track(gateway: GatewayClient, events: list[dict[str, Any]]) -> None:
    ingest = await gateway.create_key("INGEST")
    response = await gateway.http.post(
        "/v1/track", json={"events": events}, headers={"authorization": f"Bearer {ingest}"}
    )
    assert response.json()["accepted"] == len(events), response.json()


async def metrics(gateway: GatewayClient, first: str, last: str, granularity: str = "DAY") -> Any:
    variables = {"from": first, "to": last, "granularity": granularity}
    return (await gateway.execute(METRICS, variables)).data["shopMetrics"]


async def test_ten_visitors_of_whom_four_ordered_on_the_day_summer_time_ends(gateway: GatewayClient) -> None:
    visits = [view(f"v{n}", f"visitor-{n}", FIRST_MINUTES_OF_THE_DAY) for n in range(5)]
    visits += [view(f"w{n}", f"visitor-{n}", LAST_HOUR_OF_THE_DAY) for n in range(5, 10)]
    orders = [order(f"o{n}", f"visitor-{n}", LAST_HOUR_OF_THE_DAY) for n in (0, 3, 6, 9)]
    others = [view("before", "visitor-x", DAY_BEFORE), view("after", "visitor-y", NEXT_DAY)]
    await track(gateway, visits + orders + others)

    found = await metrics(gateway, "2026-10-25", "2026-10-25")

    total = found["total"]
    assert (total["visitors"], total["buyers"], total["orders"]) == (10, 4, 4)
    assert total["conversionRate"] == pytest.approx(0.4)
    assert total["averageOrderValue"] == {"amount": "50.00", "currency": "EUR"}
    assert total["revenue"] == {"amount": "200.00", "currency": "EUR"}
    assert total["newCustomers"] == 4
    assert found["periods"] == [
        {"from": "2026-10-25", "to": "2026-10-25", "visitors": 10, "buyers": 4, "orders": 4}
    ]


async def test_the_days_around_the_change_keep_their_own_events(gateway: GatewayClient) -> None:
    await track(
        gateway,
        [
            view("before", "a", DAY_BEFORE),
            view("first", "b", FIRST_MINUTES_OF_THE_DAY),
            view("after", "c", NEXT_DAY),
        ],
    )

    found = await metrics(gateway, "2026-10-24", "2026-10-26")

    assert [(p["from"], p["visitors"]) for p in found["periods"]] == [
        ("2026-10-24", 1),
        ("2026-10-25", 1),
        ("2026-10-26", 1),
    ]
    assert found["total"]["visitors"] == 3


async def test_a_visitor_on_several_days_of_a_week_is_one_visitor_of_the_week(gateway: GatewayClient) -> None:
    await track(
        gateway,
        [
            view("mon", "a", "2026-11-02T10:00:00Z"),
            view("tue", "a", "2026-11-03T10:00:00Z"),
            order("buy", "a", "2026-11-04T10:00:00Z"),
            order("again", "a", "2026-11-10T10:00:00Z", total="30.00", channel="store"),
        ],
    )

    found = await metrics(gateway, "2026-11-02", "2026-11-15", "WEEK")

    assert [(p["from"], p["to"], p["visitors"], p["orders"]) for p in found["periods"]] == [
        ("2026-11-02", "2026-11-08", 1, 1),
        ("2026-11-09", "2026-11-15", 1, 1),
    ]
    assert found["total"]["visitors"] == 1
    assert found["total"]["averageOrderValue"]["amount"] == "40.00"
    assert {c["channel"]: c["metrics"]["orders"] for c in found["byChannel"]} == {"WEB": 1, "STORE": 1}
    second_week = await metrics(gateway, "2026-11-09", "2026-11-15")
    assert (second_week["total"]["newCustomers"], second_week["total"]["returningCustomers"]) == (0, 1)


async def test_a_replayed_batch_counts_nothing_twice(gateway: GatewayClient) -> None:
    batch = [view("v1", "a", "2026-11-02T10:00:00Z"), order("o1", "a", "2026-11-02T11:00:00Z")]
    await track(gateway, batch)
    ingest = await gateway.create_key("INGEST")
    response = await gateway.http.post(
        "/v1/track", json={"events": batch}, headers={"authorization": f"Bearer {ingest}"}
    )
    assert response.json()["duplicates"] == 2, response.json()

    total = (await metrics(gateway, "2026-11-02", "2026-11-02"))["total"]

    assert (total["visitors"], total["orders"], total["revenue"]["amount"]) == (1, 1, "50.00")


async def test_a_range_that_ends_before_it_starts_names_the_field(gateway: GatewayClient) -> None:
    result = await gateway.execute(METRICS, {"from": "2026-11-02", "to": "2026-11-01", "granularity": "DAY"})

    assert result.error_codes == ["BAD_USER_INPUT"]
    assert result.body["errors"][0]["extensions"]["field"] == "to"


async def test_only_admins_read_the_shop_metrics(gateway: GatewayClient) -> None:
    storefront = await gateway.create_key("STOREFRONT")
    variables = {"from": "2026-11-02", "to": "2026-11-02", "granularity": "DAY"}

    result = await gateway.execute(METRICS, variables, key=storefront)

    assert result.error_codes == ["FORBIDDEN"]


SIZE_HISTORY = """
query($from: Date!, $to: Date!) { segment(key: "buyers") { sizeHistory(from: $from, to: $to) { day size } } }
"""


async def test_a_segments_size_history_has_the_refreshs_count_of_each_shop_day(
    gateway: GatewayClient, settings: Settings, store_uri: str
) -> None:
    saved = await gateway.execute(
        'mutation { saveSegment(input: {key: "buyers", name: "Buyers", rule: "orders(last 365d) >= 1"})'
        " { __typename } }"
    )
    assert saved.data["saveSegment"]["__typename"] == "SegmentSaved"
    client = open_client(store_uri)
    try:
        repos = await prepare_for_test(client[settings.database])
        catalogue = SegmentCatalogue(repos, cache_seconds=0)
        # 23:35 in Berlin on the 19th, then 00:30 on the 20th (both the 19th in UTC)
        await track(gateway, [order("o1", "a", "2026-11-19T22:30:00Z")])
        await refresh_segments(repos, catalogue, datetime(2026, 11, 19, 22, 35, tzinfo=UTC), zone=BERLIN)
        await track(gateway, [order("o2", "b", "2026-11-19T22:40:00Z")])
        await refresh_segments(repos, catalogue, datetime(2026, 11, 19, 23, 30, tzinfo=UTC), zone=BERLIN)
    finally:
        await client.close()

    result = await gateway.execute(SIZE_HISTORY, {"from": "2026-11-01", "to": "2026-11-30"})

    assert result.data["segment"]["sizeHistory"] == [
        {"day": "2026-11-19", "size": 1},
        {"day": "2026-11-20", "size": 2},
    ]
    refused = await gateway.execute(SIZE_HISTORY, {"from": "2026-11-30", "to": "2026-11-01"})
    assert refused.error_codes == ["BAD_USER_INPUT"]
