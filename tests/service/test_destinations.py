"""Delivering destinations to a real receiver on loopback: batches, signatures, retries, dead
letters, removals, pause and resume, the lease. Changes go into the real feed; profiles into the
real store."""

import asyncio
import dataclasses
import inspect
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from profilegate.domain.changes import ChangeKind, NewChange
from profilegate.domain.consents import Consent
from profilegate.domain.destinations import (
    Delivery,
    DestinationSpec,
    DestinationState,
    Selection,
    hashed_identifiers,
)
from profilegate.domain.errors import InvalidInput
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.profiles import Profile
from profilegate.service.destinations import admin
from profilegate.service.destinations.deliverer import Deliveries, wanted_by
from profilegate.service.destinations.rules import DeliveryRules
from profilegate.service.feed import FeedFollower, FeedRules
from profilegate.storage.store import Repositories
from tests.destination_receiver import Receiver, receiving
from tests.domain import test_destinations as domain_cases

RULES = DeliveryRules(
    development=True,
    allow_private=True,
    timeout_seconds=0.5,
    retry_first_seconds=0.05,
    retry_max_seconds=0.2,
    retry_for_seconds=30.0,
    lease_seconds=1.0,
    refresh_seconds=0.05,
)
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def spec(receiver: Receiver, **changes: Any) -> DestinationSpec:
    base = DestinationSpec(
        id="ads-vip",
        name="Ads: VIP audience",
        url=receiver.url,
        selection=Selection(segments=("vip",)),
        consent_purpose="ads",
        hash_identifiers=True,
        delivery=Delivery(max_batch=5, max_wait_seconds=0.05, rate_per_second=1000),
    )
    return dataclasses.replace(base, **changes)


def shopper(profile_id: str, *, consents: bool = True) -> Profile:
    return Profile(
        id=profile_id,
        identities=(
            Identity(type=IdentityType.EMAIL, value=f"{profile_id}@example.com"),
            Identity(type=IdentityType.PHONE, value="+4930123456"),
        ),
        traits={"country": "DE", "name": "Ann"},
        consents={"ads": Consent(purpose="ads", granted=consents, at=NOW, source="test")},
        created_at=NOW,
        updated_at=NOW,
    )


def change(profile_id: str, kind: ChangeKind, **payload: Any) -> NewChange:
    return NewChange(at=datetime.now(UTC), kind=kind, profile_id=profile_id, payload=payload, shareable=False)


class Running:
    def __init__(self, repos: Repositories, follower: FeedFollower) -> None:
        self.repos = repos
        self.follower = follower

    async def append(self, *changes: NewChange) -> None:
        await self.repos.changes.append(list(changes))
        self.follower.wake()


@pytest.fixture
async def running(repos: Repositories) -> AsyncIterator[Running]:
    follower = FeedFollower(repos.changes, FeedRules(poll_seconds=0.05, hole_seconds=0.2))
    stopping = asyncio.Event()
    task = asyncio.create_task(follower.run(stopping))
    await follower.start()
    yield Running(repos, follower)
    stopping.set()
    follower.wake()
    await task


@pytest.fixture
async def deliveries(running: Running) -> AsyncIterator[Deliveries]:
    delivering = Deliveries(running.repos, running.follower, RULES)
    stopping = asyncio.Event()
    task = asyncio.create_task(delivering.run(stopping))
    yield delivering
    stopping.set()
    await task


async def until(check: Any, within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError("not within the time given")


async def created(repos: Repositories, receiver: Receiver, **changes: Any) -> str:
    made = await admin.create_destination(repos, spec(receiver, **changes), RULES, NOW)
    receiver.secrets.append(made.secret)
    return made.secret


async def test_a_segment_entry_and_exit_arrive_signed_with_hashed_identifiers(
    running: Running, deliveries: Deliveries
) -> None:
    with receiving() as receiver:
        await running.repos.profiles.insert(shopper("p1"))
        await created(running.repos, receiver)
        deliveries.wake()
        await running.append(change("p1", ChangeKind.SEGMENT_ENTERED, segment="vip"))
        entered = await asyncio.to_thread(receiver.wait_for, 1)
        await running.append(change("p1", ChangeKind.SEGMENT_LEFT, segment="vip"))
        both = await asyncio.to_thread(receiver.wait_for, 2)

    assert all(one.verified for one in receiver.received)
    assert [m["type"] for m in both] == ["segment.entered", "segment.left"]
    hashes = {kind: list(values) for kind, values in hashed_identifiers(shopper("p1")).items()}
    assert entered[0]["hashedIdentifiers"] == hashes
    assert entered[0]["profileId"] == "p1"
    assert "profile" not in entered[0], "nothing personal unless named"
    assert "Ann" not in receiver.received[0].body.decode()


async def test_consent_withdrawn_and_erasure_send_removals_without_the_persons_data(
    running: Running, deliveries: Deliveries
) -> None:
    with receiving() as receiver:
        for profile_id in ("p1", "p2"):
            await running.repos.profiles.insert(shopper(profile_id))
        await created(running.repos, receiver, fields=("traits.country",))
        deliveries.wake()
        await running.append(
            change("p1", ChangeKind.SEGMENT_ENTERED, segment="vip"),
            change("p2", ChangeKind.SEGMENT_ENTERED, segment="vip"),
        )
        await asyncio.to_thread(receiver.wait_for, 2)
        await running.append(
            change("p1", ChangeKind.CONSENT_CHANGED, purpose="ads", granted=False, source="x")
        )
        await running.repos.profiles.delete("p2")
        await running.append(change("p2", ChangeKind.PROFILE_ERASED))
        messages = await asyncio.to_thread(receiver.wait_for, 6)

    assert messages[0]["profile"] == {"traits": {"country": "DE"}}
    removals = messages[2:]
    assert [(m["type"], m["profileId"], m["reason"]) for m in removals] == [
        ("segment.left", "p1", "consent_withdrawn"),
        ("profile.removed", "p1", "consent_withdrawn"),
        ("segment.left", "p2", "erased"),
        ("profile.removed", "p2", "erased"),
    ]
    for removal in removals:
        assert removal["hashedIdentifiers"]["email"], removal
        assert "profile" not in removal


async def test_a_receiver_failing_for_a_while_gets_every_change_in_order_under_one_id_each(
    running: Running, deliveries: Deliveries
) -> None:
    receiver = Receiver(answers=["fail", "close", "fail", "throttle", "fail"], retry_after=0)
    with receiving(receiver):
        profiles = [f"p{n}" for n in range(4)]
        for profile_id in profiles:
            await running.repos.profiles.insert(shopper(profile_id))
        await created(running.repos, receiver, selection=Selection(segments=("vip",), tiers=True))
        deliveries.wake()
        sent = []
        for n in range(6):
            for profile_id in profiles:
                sent.append(change(profile_id, ChangeKind.TIER_CHANGED, to=f"t{n}"))
            await running.append(*sent[-4:])
        messages = await asyncio.to_thread(receiver.wait_for, len(sent), 20.0)

    assert len(messages) == len(sent)
    for profile_id in profiles:
        tiers = [m["to"] for m in messages if m["profileId"] == profile_id]
        assert tiers == [f"t{n}" for n in range(6)], tiers
    ids_per_cursor: dict[str, set[str]] = {}
    for one in receiver.received:
        for message in one.messages:
            ids_per_cursor.setdefault(message["cursor"], set()).add(one.batch_id)
    assert all(len(ids) == 1 for ids in ids_per_cursor.values()), ids_per_cursor
    failed = {one.batch_id for one in receiver.received if one.answered != "ok"}
    assert failed <= {one.batch_id for one in receiver.delivered()}, "each failed batch was delivered later"
    assert all(one.verified for one in receiver.received)


async def test_retry_after_is_honoured(running: Running, deliveries: Deliveries) -> None:
    receiver = Receiver(answers=["throttle"], retry_after=1)
    with receiving(receiver):
        await running.repos.profiles.insert(shopper("p1"))
        await created(running.repos, receiver)
        deliveries.wake()
        await running.append(change("p1", ChangeKind.SEGMENT_ENTERED, segment="vip"))
        await asyncio.to_thread(receiver.wait_for, 1)

    first, second = receiver.received[:2]
    assert second.batch_id == first.batch_id
    assert second.at - first.at >= 0.95, "the retry waited the Retry-After second, not the 0.05 s schedule"


async def test_a_hanging_receiver_and_a_redirect_are_retried_and_the_redirect_not_followed(
    running: Running, deliveries: Deliveries
) -> None:
    receiver = Receiver(answers=["hang", "redirect"], hang_seconds=1.0)
    with receiving(receiver):
        await running.repos.profiles.insert(shopper("p1"))
        await created(running.repos, receiver)
        deliveries.wake()
        await running.append(change("p1", ChangeKind.SEGMENT_ENTERED, segment="vip"))
        await asyncio.to_thread(receiver.wait_for, 1)

        async def logged() -> list[Any]:
            found = await running.repos.destinations.deliveries("ads-vip", 10)
            return found if len(found) == 3 else []

        log = await until(logged)

    assert [one.answered for one in receiver.received[:3]] == ["hang", "redirect", "ok"]
    assert len({one.batch_id for one in receiver.received}) == 1
    statuses = [(line.status, line.status_code) for line in reversed(log)]
    assert statuses == [("failed", None), ("failed", 302), ("delivered", 200)], statuses
    assert "0.5 s" in log[-1].error
    assert "not followed" in log[-2].error


async def test_410_disables_the_destination(running: Running, deliveries: Deliveries) -> None:
    receiver = Receiver(default="gone")
    with receiving(receiver):
        await running.repos.profiles.insert(shopper("p1"))
        await created(running.repos, receiver)
        deliveries.wake()
        await running.append(change("p1", ChangeKind.SEGMENT_ENTERED, segment="vip"))

        async def disabled() -> bool:
            found = await admin.get_destination(running.repos, "ads-vip")
            return found.state is DestinationState.DISABLED

        await until(disabled)
        await asyncio.sleep(0.3)
    found = await admin.get_destination(running.repos, "ads-vip")
    assert "410" in found.state_reason
    assert len(receiver.received) == 1, "nothing more is sent to a destination that is gone"


async def test_a_spent_schedule_makes_a_dead_letter_that_replays_under_its_id(
    running: Running, repos: Repositories
) -> None:
    rules = dataclasses.replace(RULES, retry_for_seconds=0.3, pause_after_dead_letters=5)
    delivering = Deliveries(running.repos, running.follower, rules)
    stopping = asyncio.Event()
    task = asyncio.create_task(delivering.run(stopping))
    receiver = Receiver(default="fail")
    try:
        with receiving(receiver):
            await running.repos.profiles.insert(shopper("p1"))
            await created(running.repos, receiver)
            delivering.wake()
            await running.append(change("p1", ChangeKind.SEGMENT_ENTERED, segment="vip"))
            letters = await until(lambda: repos.destinations.dead_letters("ads-vip", 10))
            receiver.default = "ok"
            await running.append(change("p1", ChangeKind.SEGMENT_LEFT, segment="vip"))
            await asyncio.to_thread(receiver.wait_for, 1)
            assert receiver.messages()[0]["type"] == "segment.left", "the cursor moved past the dead letter"
            await admin.replay_dead_letter(repos, letters[0].batch_id)
            delivering.wake("ads-vip")
            await asyncio.to_thread(receiver.wait_for, 2)
    finally:
        stopping.set()
        await task
    replayed = receiver.delivered()[1]
    first = receiver.received[0]
    assert replayed.batch_id == letters[0].batch_id == first.batch_id
    assert replayed.body == first.body
    assert replayed.headers["webhook-timestamp"] >= first.headers["webhook-timestamp"]
    assert replayed.verified
    assert await repos.destinations.dead_letters("ads-vip", 10) == [], "a replayed dead letter is gone"


async def test_a_paused_destination_resumes_where_it_stopped(
    running: Running, deliveries: Deliveries
) -> None:
    with receiving() as receiver:
        await running.repos.profiles.insert(shopper("p1"))
        await created(running.repos, receiver, selection=Selection(tiers=True))
        deliveries.wake()
        await running.append(change("p1", ChangeKind.TIER_CHANGED, to="t0"))
        await asyncio.to_thread(receiver.wait_for, 1)
        await admin.pause_destination(running.repos, "ads-vip", NOW)
        deliveries.wake()
        await asyncio.sleep(0.3)
        await running.append(*(change("p1", ChangeKind.TIER_CHANGED, to=f"t{n}") for n in (1, 2, 3)))
        await asyncio.sleep(0.5)
        assert len(receiver.messages()) == 1, "a paused destination is sent nothing"
        await admin.resume_destination(running.repos, "ads-vip", NOW)
        deliveries.wake()
        messages = await asyncio.to_thread(receiver.wait_for, 4)
    assert [m["to"] for m in messages] == ["t0", "t1", "t2", "t3"]


async def test_one_process_delivers_at_a_time_and_another_takes_over(running: Running) -> None:
    rules = dataclasses.replace(RULES, lease_seconds=0.6)
    first = Deliveries(running.repos, running.follower, rules, owner="first")
    second = Deliveries(running.repos, running.follower, rules, owner="second")
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    with receiving() as receiver:
        await running.repos.profiles.insert(shopper("p1"))
        await created(running.repos, receiver, selection=Selection(tiers=True))
        tasks = [asyncio.create_task(first.run(stop_first))]
        await until(lambda: first.holds("ads-vip"))
        tasks.append(asyncio.create_task(second.run(stop_second)))
        await running.append(change("p1", ChangeKind.TIER_CHANGED, to="t0"))
        await asyncio.to_thread(receiver.wait_for, 1)
        assert not second.holds("ads-vip")
        stop_first.set()
        await tasks[0]
        await until(lambda: second.holds("ads-vip"), within=3.0)
        await running.append(change("p1", ChangeKind.TIER_CHANGED, to="t1"))
        messages = await asyncio.to_thread(receiver.wait_for, 2)
        stop_second.set()
        await tasks[1]
    assert [m["to"] for m in messages] == ["t0", "t1"]


async def test_egress_is_checked_when_saved(repos: Repositories) -> None:
    production = dataclasses.replace(RULES, development=False, allow_private=False)
    with receiving() as receiver:
        with pytest.raises(InvalidInput) as http_refused:
            await admin.create_destination(repos, spec(receiver), production, NOW)
        assert http_refused.value.field == "input.url"
        assert "https" in http_refused.value.reason
        private = dataclasses.replace(RULES, allow_private=False)
        with pytest.raises(InvalidInput) as loopback:
            await admin.create_destination(repos, spec(receiver), private, NOW)
        assert "loopback" in loopback.value.reason
        for url in ("https://10.0.0.8/hook", "https://169.254.169.254/latest", "https://[::1]/x"):
            with pytest.raises(InvalidInput):
                await admin.create_destination(repos, spec(receiver, url=url), production, NOW)
    assert await repos.destinations.all() == []


async def test_a_rotated_secret_signs_beside_the_previous_during_the_grace(
    running: Running, deliveries: Deliveries
) -> None:
    with receiving() as receiver:
        await running.repos.profiles.insert(shopper("p1"))
        old = await created(running.repos, receiver, selection=Selection(tiers=True))
        rotated = await admin.rotate_secret(running.repos, "ads-vip", RULES, NOW + timedelta(days=3650))
        deliveries.wake()
        receiver.secrets = [rotated.secret]
        await running.append(change("p1", ChangeKind.TIER_CHANGED, to="t1"))
        await asyncio.to_thread(receiver.wait_for, 1)
        receiver.secrets = [old]
        only_old = receiver.verify(receiver.received[0].body, receiver.received[0].headers)
    assert rotated.secret != old
    assert receiver.received[0].verified
    assert only_old, "the previous secret still verifies during the grace"
    assert len(receiver.received[0].headers["webhook-signature"].split(" ")) == 2


async def test_a_new_segment_destination_is_sent_every_consenting_member_and_a_resync_again(
    running: Running, deliveries: Deliveries
) -> None:
    members = {"p1": True, "p2": False, "p3": True}
    for profile_id, consents in members.items():
        await running.repos.profiles.insert(shopper(profile_id, consents=consents))
        await running.repos.segment_members.record(profile_id, {"vip": None}, [])
    with receiving() as receiver:
        await created(running.repos, receiver)
        deliveries.wake()
        first = await asyncio.to_thread(receiver.wait_for, 2)
        await admin.resync_destination(running.repos, "ads-vip")
        deliveries.wake("ads-vip")
        again = await asyncio.to_thread(receiver.wait_for, 4)
        await running.repos.profiles.delete("p3")
        await running.append(change("p3", ChangeKind.PROFILE_ERASED))
        removal = (await asyncio.to_thread(receiver.wait_for, 6))[4:]

    assert sorted(m["profileId"] for m in first) == ["p1", "p3"], "p2 did not grant the purpose"
    assert all(m["type"] == "segment.entered" and m["resync"] for m in first)
    assert len({one.batch_id for one in receiver.delivered()[:2]}) == 2, "a resync goes under new ids"
    assert [m["profileId"] for m in again[2:]] == ["p1", "p3"]
    assert [(m["type"], m.get("segment")) for m in removal] == [
        ("segment.left", "vip"),
        ("profile.removed", None),
    ]


async def test_a_time_range_is_resent_under_new_batch_ids(running: Running, deliveries: Deliveries) -> None:
    with receiving() as receiver:
        await running.repos.profiles.insert(shopper("p1"))
        await created(running.repos, receiver, selection=Selection(tiers=True))
        deliveries.wake()
        before = datetime.now(UTC)
        await running.append(*(change("p1", ChangeKind.TIER_CHANGED, to=f"t{n}") for n in range(3)))
        await asyncio.to_thread(receiver.wait_for, 3)
        after = datetime.now(UTC)
        await running.append(change("p1", ChangeKind.TIER_CHANGED, to="t3"))
        await asyncio.to_thread(receiver.wait_for, 4)
        await admin.resend_range(running.repos, "ads-vip", before, after)
        deliveries.wake("ads-vip")
        messages = await asyncio.to_thread(receiver.wait_for, 7)

    assert [m["to"] for m in messages] == ["t0", "t1", "t2", "t3", "t0", "t1", "t2"]
    first_ids = {one.batch_id for one in receiver.delivered()[:2]}
    assert not first_ids & {one.batch_id for one in receiver.delivered()[2:]}, "a resend has new ids"
    assert [m["cursor"] for m in messages[4:]] == [m["cursor"] for m in messages[:3]]


async def test_a_destination_that_keeps_failing_is_paused_and_counted(running: Running) -> None:
    rules = dataclasses.replace(RULES, retry_for_seconds=0.2, pause_after_dead_letters=2)
    observer = Counted()
    delivering = Deliveries(running.repos, running.follower, rules, observer=observer)
    stopping = asyncio.Event()
    task = asyncio.create_task(delivering.run(stopping))
    receiver = Receiver(default="fail")
    try:
        with receiving(receiver):
            await running.repos.profiles.insert(shopper("p1"))
            await created(running.repos, receiver, selection=Selection(tiers=True))
            delivering.wake()
            await running.append(change("p1", ChangeKind.TIER_CHANGED, to="t0"))
            await until(lambda: running.repos.destinations.dead_letters("ads-vip", 10))
            await running.append(change("p1", ChangeKind.TIER_CHANGED, to="t1"))

            async def paused() -> bool:
                found = await admin.get_destination(running.repos, "ads-vip")
                return found.state is DestinationState.PAUSED

            await until(paused)
    finally:
        stopping.set()
        await task
    found = await admin.get_destination(running.repos, "ads-vip")
    assert "2 batches in a row given up" in found.state_reason
    assert observer.paused_count == 1
    assert observer.dead == 2


async def test_the_address_is_checked_again_at_send_time(running: Running) -> None:
    strict = dataclasses.replace(RULES, allow_private=False)
    delivering = Deliveries(running.repos, running.follower, strict)
    stopping = asyncio.Event()
    with receiving() as receiver:
        await running.repos.profiles.insert(shopper("p1"))
        await created(running.repos, receiver, selection=Selection(tiers=True))  # allowed when saved
        task = asyncio.create_task(delivering.run(stopping))
        await running.append(change("p1", ChangeKind.TIER_CHANGED, to="t0"))

        async def refused() -> list[Any]:
            return await running.repos.destinations.deliveries("ads-vip", 1)

        [line] = await until(refused)
        stopping.set()
        await task
    assert receiver.received == []
    assert line.status == "failed"
    assert "loopback" in line.error


class Counted:
    def __init__(self) -> None:
        self.paused_count = 0
        self.dead = 0

    def attempted(self, destination: str, status: str, code: int | None) -> None:
        pass

    def dead_lettered(self, destination: str) -> None:
        self.dead += 1

    def paused(self, destination: str) -> None:
        self.paused_count += 1

    def lag(self, destination: str, seconds: float, changes: int) -> None:
        pass

    def stopped(self, destination: str) -> None:
        pass


def test_a_destination_asking_for_consent_changes_follows_those_of_other_purposes() -> None:
    spec = domain_cases.SPEC
    consents = dataclasses.replace(spec, selection=Selection(kinds=frozenset({ChangeKind.CONSENT_CHANGED})))
    other = domain_cases.change(ChangeKind.CONSENT_CHANGED, purpose="ads", granted=False)

    assert wanted_by(consents)(other)
    assert not wanted_by(spec)(other), "a destination that did not ask gets only its own purpose's"
