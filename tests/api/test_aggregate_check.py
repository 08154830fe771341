"""``aggregateCheck`` over GraphQL: a tracked store agrees with its log, a difference planted
through the repository is named with the profile's id and the metric, pages walk the sorted
differences, only admins may ask, and each call is in the audit log."""

from typing import Any

from profilegate.storage.store import Repositories
from tests.api.test_order_truth import placed, returned, track
from tests.gateway import GatewayClient
from tests.service.test_rebuild import overwrite, profile_of

CHECK = """
query($first: Int, $after: String) {
  aggregateCheck(first: $first, after: $after) {
    agrees total nextCursor profiles events unattributed
    differences { subject id metric live fromLog }
  }
}
"""
AUDIT = '{ auditLog(filter: {action: "aggregateCheck"}) { entries { outcome arguments } } }'


async def check(gateway: GatewayClient, first: int = 100, after: str | None = None) -> dict[str, Any]:
    answer = await gateway.execute(CHECK, {"first": first, "after": after})
    assert "errors" not in answer.body, answer.body
    found: dict[str, Any] = answer.data["aggregateCheck"]
    return found


async def shop(gateway: GatewayClient) -> None:
    assert [r["status"] for r in await track(gateway, placed("d1-order-5001", "139.76"))] == ["accepted"]
    assert [r["status"] for r in await track(gateway, returned("d1-return-1", "D-5001", "19.90"))] == [
        "accepted"
    ]


async def test_a_tracked_store_agrees_with_its_log(gateway: GatewayClient) -> None:
    await shop(gateway)

    found = await check(gateway)

    assert found == {
        "agrees": True,
        "total": 0,
        "nextCursor": None,
        "profiles": 1,
        "events": 2,
        "unattributed": 0,
        "differences": [],
    }


async def test_a_difference_planted_through_the_repository_is_named(
    gateway: GatewayClient, repos: Repositories
) -> None:
    await shop(gateway)
    dana = await profile_of(repos, "dana@example.com")
    planted = dana.aggregates.model_copy(update={"orders": 7, "returned": 5})
    await overwrite(repos, dana.id, aggregates=planted)

    found = await check(gateway)

    assert (found["agrees"], found["total"]) == (False, 2)
    assert found["differences"] == [
        {"subject": "PROFILE", "id": dana.id, "metric": "orders", "live": "7", "fromLog": "1"},
        {"subject": "PROFILE", "id": dana.id, "metric": "returned", "live": "5", "fromLog": "1990"},
    ]


async def test_pages_walk_the_sorted_differences(gateway: GatewayClient, repos: Repositories) -> None:
    await shop(gateway)
    dana = await profile_of(repos, "dana@example.com")
    planted = {"orders": 7, "returned": 5, "gross": 1}
    await overwrite(repos, dana.id, aggregates=dana.aggregates.model_copy(update=planted))
    whole = (await check(gateway))["differences"]

    first = await check(gateway, first=2)
    second = await check(gateway, first=2, after=first["nextCursor"])

    assert [d["metric"] for d in whole] == ["gross", "orders", "returned"]
    assert first["differences"] == whole[:2]
    assert (second["differences"], second["nextCursor"], second["total"]) == (whole[2:], None, 3)


async def test_a_bad_cursor_or_first_is_refused_naming_the_argument(gateway: GatewayClient) -> None:
    for variables, field in (({"first": 501}, "first"), ({"first": 1, "after": "nope"}, "after")):
        [error] = (await gateway.execute(CHECK, variables)).body["errors"]

        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}


async def test_only_admins_may_ask_and_each_call_is_audited(gateway: GatewayClient) -> None:
    partner = await gateway.create_key("PARTNER", "crm-sync")

    refused = await gateway.execute(CHECK, {"first": 5}, key=partner)
    await check(gateway, first=5)

    assert refused.error_codes == ["FORBIDDEN"]
    entries = (await gateway.execute(AUDIT)).data["auditLog"]["entries"]
    assert entries == [
        {"outcome": "AggregateCheck", "arguments": {"first": 5, "after": None}},
        {"outcome": "FORBIDDEN", "arguments": {"first": 5, "after": None}},
    ]
