"""``shopMetrics(segment:)`` counts only the segment's members; partner keys read it when granted."""

from datetime import UTC, datetime

from profilegate.service.segments import SegmentCatalogue, refresh_segments
from profilegate.settings import Settings
from profilegate.storage.store import open_client
from tests.api.test_shop_metrics import order, track, view
from tests.conftest import prepare_for_test
from tests.gateway import GatewayClient

BY_SEGMENT = """
query($segment: String) {
  shopMetrics(from: "2026-11-19", to: "2026-11-19", granularity: DAY, segment: $segment) {
    total { visitors buyers orders revenue { amount } returns paymentMethods { orders } }
  }
}
"""
PARTNER_KEY = """
mutation($fields: [String!]) {
  createApiKey(name: "partner-key", role: PARTNER, fields: $fields) { ... on ApiKeyCreated { token } }
}
"""


def returned(event_id: str, who: str, at: str, order_id: str) -> dict[str, object]:
    return {
        "id": event_id,
        "type": "order_returned",
        "at": at,
        "channel": "web",
        "anonymousId": who,
        "properties": {"orderId": order_id, "amount": "10.00"},
    }


async def test_a_segment_filter_counts_only_its_members_visits_orders_and_returns(
    gateway: GatewayClient, settings: Settings, store_uri: str
) -> None:
    saved = await gateway.execute(
        'mutation { saveSegment(input: {key: "buyers", name: "Big buyers", '
        'rule: "net_spend(last 365d) > 30.00"}) { __typename } }'
    )
    assert saved.data["saveSegment"]["__typename"] == "SegmentSaved"
    await track(
        gateway,
        [
            view("v1", "a", "2026-11-19T10:00:00Z"),
            order("o1", "a", "2026-11-19T10:10:00Z"),
            returned("r1", "a", "2026-11-19T12:00:00Z", "o-o1"),
            view("v2", "b", "2026-11-19T10:00:00Z"),
            order("o2", "c", "2026-11-19T11:00:00Z", total="30.00"),
            returned("r2", "c", "2026-11-19T12:00:00Z", "o-o2"),
        ],
    )
    client = open_client(store_uri)
    try:
        repos = await prepare_for_test(client[settings.database])
        await refresh_segments(
            repos, SegmentCatalogue(repos, cache_seconds=0), datetime(2026, 11, 20, tzinfo=UTC)
        )
    finally:
        await client.close()

    everyone = (await gateway.execute(BY_SEGMENT, {"segment": None})).data["shopMetrics"]["total"]
    members = (await gateway.execute(BY_SEGMENT, {"segment": "buyers"})).data["shopMetrics"]["total"]

    assert (everyone["visitors"], everyone["buyers"], everyone["orders"], everyone["returns"]) == (3, 2, 2, 2)
    assert (members["visitors"], members["buyers"], members["orders"]) == (1, 1, 1)
    assert (members["revenue"]["amount"], members["returns"]) == ("50.00", 1)
    assert sum(row["orders"] for row in members["paymentMethods"]) == 1


async def test_an_unknown_segment_is_refused_naming_the_argument(gateway: GatewayClient) -> None:
    result = await gateway.execute(BY_SEGMENT, {"segment": "nobody"})

    assert result.error_codes == ["BAD_USER_INPUT"]
    assert result.body["errors"][0]["extensions"]["field"] == "segment"


async def test_a_partner_key_reads_the_shop_metrics_only_when_granted_them(gateway: GatewayClient) -> None:
    plain = (await gateway.execute(PARTNER_KEY, {"fields": ["traits"]})).data["createApiKey"]["token"]
    granted = (await gateway.execute(PARTNER_KEY, {"fields": ["shopMetrics"]})).data["createApiKey"]["token"]
    await track(gateway, [view("v1", "a", "2026-11-19T10:00:00Z")])

    refused = await gateway.execute(BY_SEGMENT, {"segment": None}, key=plain)
    allowed = await gateway.execute(BY_SEGMENT, {"segment": None}, key=granted)

    assert refused.error_codes == ["FORBIDDEN"]
    assert allowed.data["shopMetrics"]["total"]["visitors"] == 1
