"""A rule checked and counted before it is saved: what the console's segment editor shows."""

from typing import Any

from tests.gateway import GatewayClient

PREVIEW = """
query($rule: String!, $key: String, $sample: Int) {
  previewSegment(rule: $rule, key: $key, sample: $sample) {
    __typename
    ... on SegmentPreview { size sample { identities { value } } }
    ... on InvalidRuleError { field line column message }
    ... on InvalidInputError { field message }
    ... on SegmentChainError { chain }
  }
}
"""
UPSERT = """
mutation($input: UpsertProfileInput!) { upsertProfile(input: $input) { __typename } }
"""


async def preview(gateway: GatewayClient, rule: str, **extra: Any) -> dict[str, Any]:
    result = await gateway.execute(PREVIEW, {"rule": rule, **extra})
    return dict(result.data["previewSegment"])


async def shoppers(gateway: GatewayClient, *countries: str) -> None:
    for index, country in enumerate(countries):
        ref = {"identity": {"type": "EMAIL", "value": f"p{index}@example.com"}}
        result = await gateway.execute(UPSERT, {"input": {"ref": ref, "traits": {"country": country}}})
        assert result.data["upsertProfile"]["__typename"] == "ProfileUpserted"


async def test_a_preview_counts_and_samples_the_members_and_saves_nothing(gateway: GatewayClient) -> None:
    await shoppers(gateway, "DE", "AT", "FR", "DE")
    shown = await preview(gateway, 'traits.country in ["DE", "AT"]', sample=2)
    assert shown["__typename"] == "SegmentPreview"
    assert shown["size"] == 3
    assert len(shown["sample"]) == 2
    listed = await gateway.execute("{ segments { key } }")
    assert listed.data == {"segments": []}


async def test_a_rule_that_does_not_parse_is_refused_at_its_line_and_column(gateway: GatewayClient) -> None:
    refused = await preview(gateway, "orders >= 1\nand net_spnd > 5")
    assert refused["__typename"] == "InvalidRuleError"
    assert (refused["field"], refused["line"], refused["column"]) == ("rule", 2, 5)


async def test_a_preview_checks_the_chains_of_the_segment_being_edited(gateway: GatewayClient) -> None:
    saved = await gateway.execute(
        'mutation { saveSegment(input: {key: "a", name: "A", rule: "orders >= 1"}) { __typename } }'
    )
    assert saved.data["saveSegment"]["__typename"] == "SegmentSaved"
    refused = await preview(gateway, 'in_segment("a")', key="a")
    assert refused["__typename"] == "InvalidRuleError"
    assert "own rule" in refused["message"]


async def test_the_sample_size_is_limited(gateway: GatewayClient) -> None:
    refused = await preview(gateway, "orders >= 1", sample=21)
    assert (refused["__typename"], refused["field"]) == ("InvalidInputError", "sample")


async def test_only_admins_preview(gateway: GatewayClient) -> None:
    token = await gateway.create_key("STOREFRONT")
    result = await gateway.execute(PREVIEW, {"rule": "orders >= 1"}, key=token)
    assert result.error_codes == ["FORBIDDEN"]
