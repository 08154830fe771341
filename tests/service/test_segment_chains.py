"""Saving a segment refuses a chain of in_segment that is too long or loops; nothing is stored."""

from datetime import UTC, datetime

import pytest

from profilegate.domain.money import Currencies
from profilegate.domain.segment_chains import MAX_SEGMENT_CHAIN, SegmentChainRefused
from profilegate.service.segments import SegmentCatalogue, SegmentInput, SegmentRules, save_segment
from profilegate.storage.store import Repositories

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
RULES = SegmentRules(currencies=Currencies(base="EUR"), consent_purposes=frozenset({"ads"}), kept_days=400)


async def save(repos: Repositories, key: str, rule: str) -> None:
    catalogue = SegmentCatalogue(repos, cache_seconds=0)
    await save_segment(repos, catalogue, SegmentInput(key, key.title(), rule), RULES, by="admin", now=NOW)


async def stored_rules(repos: Repositories) -> dict[str, str]:
    return {segment.key: segment.rule_text for segment in await repos.segments.all()}


async def save_chain(repos: Repositories, length: int) -> None:
    """s<length-1> -> ... -> s0, saved bottom first."""
    await save(repos, "s0", "orders >= 1")
    for index in range(1, length):
        await save(repos, f"s{index}", f'in_segment("s{index - 1}") and orders >= {index}')


async def test_a_chain_past_the_limit_is_refused_and_not_stored(repos: Repositories) -> None:
    await save_chain(repos, MAX_SEGMENT_CHAIN)
    with pytest.raises(SegmentChainRefused) as refused:
        await save(repos, "top", f'in_segment("s{MAX_SEGMENT_CHAIN - 1}")')
    assert refused.value.chain[:2] == ("top", f"s{MAX_SEGMENT_CHAIN - 1}")
    assert len(refused.value.chain) == MAX_SEGMENT_CHAIN + 1
    assert "top" not in await stored_rules(repos)


async def test_an_update_that_lengthens_the_chains_above_is_refused(repos: Repositories) -> None:
    await save_chain(repos, MAX_SEGMENT_CHAIN)
    await save(repos, "base", "orders >= 2")
    with pytest.raises(SegmentChainRefused) as refused:
        await save(repos, "s0", 'in_segment("base")')
    assert refused.value.chain[0] == f"s{MAX_SEGMENT_CHAIN - 1}"
    assert refused.value.chain[-2:] == ("s0", "base")
    assert (await stored_rules(repos))["s0"] == "orders >= 1"
