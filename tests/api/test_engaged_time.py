"""Engaged time on product pages: reported ``engagedSeconds`` (capped), else the gap to the
visitor's next event within the session timeout, in the shop's days, whatever the arrival order."""

from typing import Any

import pytest

from profilegate.domain.events import MAX_ENGAGED_SECONDS
from profilegate.settings import Settings
from tests.api.test_shop_metrics import track, view
from tests.gateway import GatewayClient

ENGAGED = """
query($from: Date!, $to: Date!) {
  shopMetrics(from: $from, to: $to, granularity: DAY) {
    total { productPageSeconds { views measured median mean } }
    periods { from productPageSeconds { views measured } }
  }
}
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"shop_time_zone": "Europe/Berlin"})


def product_view(event_id: str, who: str, at: str, **properties: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "product_view",
        "at": at,
        "channel": "web",
        "anonymousId": who,
        "properties": {"sku": "A1", **properties},
    }


async def engaged(gateway: GatewayClient, first: str, last: str) -> Any:
    return (await gateway.execute(ENGAGED, {"from": first, "to": last})).data["shopMetrics"]


async def test_reported_seconds_count_capped_and_gaps_within_the_session_timeout_fill_in(
    gateway: GatewayClient,
) -> None:
    await track(
        gateway,
        [
            product_view("p1", "a", "2026-11-19T10:00:00Z"),  # next event 2 minutes later
            view("v1", "a", "2026-11-19T10:02:00Z"),
            product_view("p2", "a", "2026-11-19T10:05:00Z", engagedSeconds=45),
            product_view("p3", "a", "2026-11-19T10:10:00Z", engagedSeconds=99_999),
            product_view("p4", "a", "2026-11-19T10:20:00Z"),  # next event 31 minutes later
            view("v2", "a", "2026-11-19T10:51:00Z"),
            product_view("p5", "a", "2026-11-19T10:52:00Z"),  # the session's last event
        ],
    )

    found = (await engaged(gateway, "2026-11-19", "2026-11-19"))["total"]["productPageSeconds"]

    # measured: p1 120 s (the gap), p2 45 s (reported), p3 the cap; not p4 nor p5
    assert found == {
        "views": 5,
        "measured": 3,
        "median": 120.0,
        "mean": pytest.approx((120 + 45 + MAX_ENGAGED_SECONDS) / 3),
    }


async def test_a_view_before_midnight_is_measured_on_its_day_up_to_the_next_days_event(
    gateway: GatewayClient,
) -> None:
    # 23:50 in Berlin on the 19th, then 00:10 on the 20th
    await track(
        gateway, [product_view("p1", "b", "2026-11-19T22:50:00Z"), view("v1", "b", "2026-11-19T23:10:00Z")]
    )

    found = await engaged(gateway, "2026-11-19", "2026-11-19")

    assert found["total"]["productPageSeconds"] == {
        "views": 1,
        "measured": 1,
        "median": 1200.0,
        "mean": 1200.0,
    }


async def test_an_event_tracked_later_but_earlier_in_time_ends_the_view(gateway: GatewayClient) -> None:
    await track(gateway, [product_view("p1", "c", "2026-11-19T12:00:00Z")])
    unmeasured = await engaged(gateway, "2026-11-19", "2026-11-19")
    await track(gateway, [view("v2", "c", "2026-11-19T12:05:00Z"), view("v1", "c", "2026-11-19T12:01:00Z")])

    found = await engaged(gateway, "2026-11-19", "2026-11-19")

    assert unmeasured["total"]["productPageSeconds"]["measured"] == 0
    assert found["total"]["productPageSeconds"] == {"views": 1, "measured": 1, "median": 60.0, "mean": 60.0}


async def test_another_visitors_event_does_not_end_a_view(gateway: GatewayClient) -> None:
    await track(
        gateway, [product_view("p1", "d", "2026-11-19T12:00:00Z"), view("v1", "e", "2026-11-19T12:01:00Z")]
    )

    found = (await engaged(gateway, "2026-11-19", "2026-11-19"))["total"]["productPageSeconds"]

    assert (found["views"], found["measured"], found["median"]) == (1, 0, None)


@pytest.mark.parametrize("bad", ["12", -1, True])
async def test_engaged_seconds_that_are_not_a_number_of_seconds_are_refused_naming_the_field(
    gateway: GatewayClient, bad: Any
) -> None:
    ingest = await gateway.create_key("INGEST")
    batch = {"events": [product_view("p1", "f", "2026-11-19T12:00:00Z", engagedSeconds=bad)]}

    body = (
        await gateway.http.post("/v1/track", json=batch, headers={"authorization": f"Bearer {ingest}"})
    ).json()

    assert body["rejected"] == 1, body
    assert body["results"][0]["reason"].startswith("properties.engagedSeconds"), body
