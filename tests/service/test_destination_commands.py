"""Store commands per delivered batch, pinned by command name in the layout under test.

A delivered batch of the change feed costs: reading its profiles and what each was sent, writing
the batch in flight, the delivery log line, what each profile was sent, and the acknowledgement.
The commands are those the deliverers' tasks send (a context variable marks them); the feed
follower's reads are shared by every destination and every subscriber and are not counted.
Lowering a number is the point; edit the tables on purpose.
"""

import asyncio
import contextvars
import dataclasses
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from profilegate.domain.changes import ChangeKind
from profilegate.domain.destinations import Selection
from profilegate.service.destinations import admin
from profilegate.service.destinations.deliverer import Deliveries
from profilegate.service.feed import FeedFollower, FeedRules
from profilegate.storage.command_timing import CommandTimer
from profilegate.storage.layout import LayoutKind
from profilegate.storage.store import Repositories, open_client
from tests.conftest import TEST_LAYOUT_KIND, prepare_for_test
from tests.destination_receiver import receiving
from tests.service.test_destinations import NOW, RULES, change, shopper, spec

DELIVERING: contextvars.ContextVar[bool] = contextvars.ContextVar("delivering", default=False)
BATCHES = 5
# One feed batch of one change, acknowledged with 2xx.
PER_BATCH: dict[LayoutKind, dict[str, int]] = {
    LayoutKind.EMBEDDED: {"find": 2, "findAndModify": 2, "insert": 1, "update": 2},
    LayoutKind.MONGODB: {"find": 2, "findAndModify": 2, "insert": 1, "update": 2},
}


@pytest.fixture
async def counted(store_uri: str) -> AsyncIterator[tuple[Repositories, Counter[str]]]:
    commands: Counter[str] = Counter()

    def observe(name: str, seconds: float) -> None:
        if DELIVERING.get():
            commands[name] += 1

    client = open_client(store_uri, listeners=[CommandTimer(observe)])
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield await prepare_for_test(client[name]), commands
        await client.drop_database(name)
    finally:
        await client.close()


async def acknowledged(repos: Repositories) -> None:
    """Wait for the last batch's acknowledgement: the cursor at the feed's head."""
    head = await repos.changes.head()
    for _ in range(500):
        state = await repos.destinations.state("ads-vip")
        if state is not None and state.outbox is None and state.cursor == head:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the batch was not acknowledged")


async def test_store_commands_per_delivered_batch(counted: tuple[Repositories, Counter[str]]) -> None:
    repos, commands = counted
    follower = FeedFollower(repos.changes, FeedRules(poll_seconds=0.05))
    stopping = asyncio.Event()
    follow_task = asyncio.create_task(follower.run(stopping))
    await follower.start()
    # No lease renewal or idle bookkeeping while measuring: only the batches' own commands.
    rules = dataclasses.replace(RULES, lease_seconds=60.0, refresh_seconds=30.0)
    deliveries = Deliveries(repos, follower, rules)
    marked = contextvars.copy_context()
    marked.run(DELIVERING.set, True)
    with receiving() as receiver:
        await repos.profiles.insert(shopper("p1"))
        made = await admin.create_destination(
            repos, spec(receiver, selection=Selection(tiers=True)), RULES, NOW
        )
        receiver.secrets.append(made.secret)
        task = marked.run(asyncio.create_task, deliveries.run(stopping))
        await repos.changes.append([change("p1", ChangeKind.TIER_CHANGED, to="t0")])
        follower.wake()
        await asyncio.to_thread(receiver.wait_for, 1)  # warm: the lease, collections and indexes
        await acknowledged(repos)
        commands.clear()
        for n in range(1, BATCHES + 1):
            await repos.changes.append([change("p1", ChangeKind.TIER_CHANGED, to=f"t{n}")])
            follower.wake()
            await asyncio.to_thread(receiver.wait_for, n + 1)
            await acknowledged(repos)
        measured = dict(commands)
        stopping.set()
        follower.wake()
        await asyncio.gather(task, follow_task)

    per_batch = {name: count / BATCHES for name, count in sorted(measured.items())}
    assert per_batch == PER_BATCH[TEST_LAYOUT_KIND], per_batch
    assert all(one.verified for one in receiver.received)
