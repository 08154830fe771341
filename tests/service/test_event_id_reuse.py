"""An event id reused after 10,000 other events is recognised, in both layouts.

The events go through ``track``, the real append path, in batches of 500, so on the embedded
layout (segments of 100 in the tests) the first use lies a hundred segments back (~60 s on a
2-core machine). The mongodb layout's one collection refuses a reuse by its ``_id`` index at
any size, while the test store pays O(collection size) for each insert there (DESIGN sec. 2):
it tracks 1,000.
"""

from datetime import UTC, datetime

from profilegate.service.tracking import ID_USED_ELSEWHERE, Status, track
from profilegate.storage.layout import LayoutKind
from profilegate.storage.store import Repositories
from tests.conftest import TEST_LAYOUT_KIND
from tests.service.raw_events import email_ref, event
from tests.service.test_rebuild import default_tracking, profile_of

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
BATCH = 500
OTHERS = 10_000 if TEST_LAYOUT_KIND is LayoutKind.EMBEDDED else 1_000


def view(event_id: str, email: str) -> dict[str, object]:
    return event(event_id, "product_view", NOW, email_ref(email), sku="A1", category="shoes")


async def logged_copies(repos: Repositories, event_id: str) -> int:
    return sum([1 async for document in repos.events.scan() if document["_id"] == event_id])


async def test_an_id_reused_after_10000_other_events_is_a_duplicate(repos: Repositories) -> None:
    rules = default_tracking()
    await track(repos, [view("first", "ann@example.com")], rules, NOW)
    for start in range(0, OTHERS, BATCH):
        batch = [view(f"e{i}", f"c{i % 50}@example.com") for i in range(start, start + BATCH)]
        assert (await track(repos, batch, rules, NOW)).count(Status.ACCEPTED) == BATCH

    for_bob = await track(repos, [view("first", "bob@example.com")], rules, NOW)
    for_ann = await track(repos, [view("first", "ann@example.com")], rules, NOW)

    assert [(r.status, r.reason) for r in for_bob.results] == [(Status.DUPLICATE, ID_USED_ELSEWHERE)]
    assert [r.status for r in for_ann.results] == [Status.DUPLICATE]
    assert (await profile_of(repos, "ann@example.com")).aggregates.counts == {"product_view": 1}
    assert await logged_copies(repos, "first") == 1
