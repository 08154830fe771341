"""Delivering destinations: one task per enabled destination, delivering while it holds the lease.

``Deliveries`` (one per process) starts a ``Deliverer`` for each enabled destination and stops
those paused, disabled, deleted or changed, checking every ``refresh_seconds`` (and at once
after an admin change in this process). A deliverer takes the destination's lease in the store
(``owner``, ``expiresAt``), renews it every third of ``lease_seconds`` and, while it holds it:

1. resends the batch in flight if there is one (the ``outbox``: written before its first send,
   so after a crash the next holder sends exactly that batch under the same id),
2. works through the admin's queued requests (resync, resend, replay),
3. follows the change feed after its cursor (``FeedFollower.subscribe`` + ``follow``; when it
   falls behind it resumes after the last change it took), keeping the changes the destination
   asks for, batching up to ``maxBatch`` messages or ``maxWaitSeconds``, and sends the batch.

A 2xx answer acknowledges the batch: the cursor moves past it. 410 disables the destination.
Anything else (429, 5xx, other statuses, timeouts, connection errors) is retried on the
schedule of ``DeliveryRules``; once it is spent the batch becomes a dead letter and the cursor
moves on, and a destination whose batches keep dying is paused. Each destination has its own
task and its own HTTP requests, and tracking never waits for any of them.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx
import orjson

from profilegate.domain.changes import Change, ChangeKind
from profilegate.domain.destinations import (
    Destination,
    DestinationSpec,
    DestinationState,
    SentRecord,
    entered_messages,
    iso,
    messages_for,
)
from profilegate.service.destinations.rules import DeliveryRules
from profilegate.service.destinations.sending import Answer, post, signed_headers
from profilegate.service.feed import FeedFollower, SubscriberLagged, follow
from profilegate.storage.destinations import (
    DeadLetter,
    DeliveryRecord,
    DeliveryState,
    Outbox,
    ProfileEffect,
    Request,
)
from profilegate.storage.store import Repositories

log = logging.getLogger("profilegate.destinations")

PAGE = 500


def wall_clock() -> datetime:
    return datetime.now(UTC)


class DeliveryObserver(Protocol):
    """Where deliveries are counted (the Prometheus series, api/prometheus.py)."""

    def attempted(self, destination: str, status: str, code: int | None) -> None: ...

    def dead_lettered(self, destination: str) -> None: ...

    def paused(self, destination: str) -> None: ...

    def lag(self, destination: str, seconds: float, changes: int) -> None: ...

    def stopped(self, destination: str) -> None: ...


class Unobserved:
    def attempted(self, destination: str, status: str, code: int | None) -> None:
        pass

    def dead_lettered(self, destination: str) -> None:
        pass

    def paused(self, destination: str) -> None:
        pass

    def lag(self, destination: str, seconds: float, changes: int) -> None:
        pass

    def stopped(self, destination: str) -> None:
        pass


def new_batch_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def wanted_by(spec: DestinationSpec) -> Callable[[Change], bool]:
    """Whether a change can concern ``spec``'s destination (consent is checked per profile)."""

    def wanted(change: Change) -> bool:
        if change.kind is ChangeKind.PROFILE_ERASED:
            return True
        own_purpose = change.payload.get("purpose") == spec.consent_purpose
        if change.kind is ChangeKind.CONSENT_CHANGED and own_purpose:
            return True  # granted or withdrawn, whatever the destination asked for
        return spec.selection.wants(change)

    return wanted


def batch_body(batch_id: str, destination: str, messages: list[dict[str, object]]) -> str:
    return orjson.dumps({"batchId": batch_id, "destination": destination, "messages": messages}).decode()


class Deliverer:
    """Delivers one destination while this process holds its lease."""

    def __init__(
        self,
        destination: Destination,
        repos: Repositories,
        follower: FeedFollower,
        rules: DeliveryRules,
        http: httpx.AsyncClient,
        *,
        owner: str,
        observer: DeliveryObserver,
        wall: Callable[[], datetime] = wall_clock,
    ) -> None:
        self.destination = destination
        self.spec = destination.spec
        self._repos = repos
        self._store = repos.destinations
        self._follower = follower
        self._rules = rules
        self._http = http
        self._owner = owner
        self._observer = observer
        self._wall = wall
        self._stop = asyncio.Event()
        self._poke = asyncio.Event()
        self._lost = asyncio.Event()
        self._wanted = wanted_by(self.spec)
        self._queue: asyncio.Queue[Change] = asyncio.Queue(max(2 * self.spec.delivery.max_batch, 100))
        self._carried: list[Change] = []
        self._seen = 0  # the last feed place the pump looked at
        self._last_send = 0.0
        self._lag_told = float("-inf")
        self.holding = False

    def stop(self) -> None:
        self._stop.set()

    def poke(self) -> None:
        """Look at the stored state again (an admin queued a request)."""
        self._poke.set()

    async def run(self, stopping: asyncio.Event) -> None:
        while not self._ended(stopping):
            now = self._wall()
            try:
                state = await self._store.take_lease(self.spec.id, self._owner, now, self._lease_end(now))
            except Exception:
                log.exception("destination %s: taking its lease failed; trying again", self.spec.id)
                state = None
            if state is None:
                await self._pause(stopping, self._rules.renew_seconds)
                continue
            self.holding = True
            try:
                await self._hold(state, stopping)
            except Exception:
                log.exception("destination %s: delivery failed; starting over", self.spec.id)
                await self._pause(stopping, self._rules.renew_seconds)
            finally:
                self.holding = False
                if not self._lost.is_set():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self._store.release_lease(self.spec.id, self._owner), 0.5)
                self._lost.clear()
        self._observer.stopped(self.spec.id)

    def _ended(self, stopping: asyncio.Event) -> bool:
        return stopping.is_set() or self._stop.is_set()

    def _lease_end(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self._rules.lease_seconds)

    async def _pause(self, stopping: asyncio.Event, seconds: float) -> None:
        """Wait ``seconds``, or less if told to stop or to look again."""
        waits = [
            asyncio.ensure_future(event.wait()) for event in (stopping, self._stop, self._lost, self._poke)
        ]
        try:
            await asyncio.wait(waits, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        self._poke.clear()

    async def _hold(self, state: DeliveryState, stopping: asyncio.Event) -> None:
        renewer = asyncio.create_task(self._renew(stopping))
        start = (
            state.outbox.last if state.outbox is not None and state.outbox.kind == "feed" else state.cursor
        )
        self._seen = max(start, state.cursor)
        self._carried.clear()
        self._queue = asyncio.Queue(self._queue.maxsize)
        pump = asyncio.create_task(self._pump(start))
        try:
            current: DeliveryState | None = state
            while current is not None and not self._ended(stopping) and not self._lost.is_set():
                current = await self._step(current, stopping)
        finally:
            for task in (pump, renewer):
                task.cancel()
            await asyncio.gather(pump, renewer, return_exceptions=True)

    async def _renew(self, stopping: asyncio.Event) -> None:
        while not self._ended(stopping):
            await asyncio.sleep(self._rules.renew_seconds)
            try:
                held = await self._store.renew_lease(self.spec.id, self._owner, self._lease_end(self._wall()))
            except Exception:
                log.exception("destination %s: renewing its lease failed", self.spec.id)
                continue
            if not held:
                log.warning("destination %s: another process took its lease", self.spec.id)
                self._lost.set()
                return

    async def _pump(self, after: int) -> None:
        """Follow the feed after place ``after`` into the queue; after falling behind, go on
        after the last change queued."""

        def wanted(change: Change) -> bool:
            self._seen = change.seq
            return self._wanted(change)

        while True:
            try:
                async with self._follower.subscribe() as subscription:
                    async for change in follow(self._follower, subscription, after, wanted):
                        await self._queue.put(change)
                        after = change.seq
            except SubscriberLagged:
                log.info(
                    "destination %s fell behind the live feed; reading it from place %d", self.spec.id, after
                )

    async def _step(self, state: DeliveryState, stopping: asyncio.Event) -> DeliveryState | None:
        """One piece of work; the state after it (None: the lease is gone or delivery ends)."""
        await self._observe_lag(state)
        if state.outbox is not None:
            return await self._deliver(state, state.outbox, stopping)
        if state.requests:
            return await self._work(state, state.requests[0])
        changes = await self._collect(stopping)
        if changes:
            return await self._send_changes(state, changes)
        self._poke.clear()
        await self._skip_quiet(state)
        return await self._store.state(self.spec.id)

    async def _collect(self, stopping: asyncio.Event) -> list[Change]:
        """Changes for one batch: the first within ``refresh_seconds``, then more until the
        batch is full or ``maxWaitSeconds`` have passed since the first."""
        limit = self.spec.delivery.max_batch
        batch, self._carried = self._carried[:limit], self._carried[limit:]
        loop = asyncio.get_running_loop()
        if not batch:
            first = await self._next(stopping, self._rules.refresh_seconds)
            if first is None:
                return []
            batch.append(first)
        deadline = loop.time() + self.spec.delivery.max_wait_seconds
        while len(batch) < limit:
            with contextlib.suppress(asyncio.QueueEmpty):
                batch.append(self._queue.get_nowait())
                continue
            left = deadline - loop.time()
            if left <= 0:
                break
            more = await self._next(stopping, left)
            if more is None:
                break
            batch.append(more)
        return batch

    async def _next(self, stopping: asyncio.Event, seconds: float) -> Change | None:
        getter = asyncio.ensure_future(self._queue.get())
        waits = [
            asyncio.ensure_future(event.wait()) for event in (stopping, self._stop, self._lost, self._poke)
        ]
        try:
            done, _ = await asyncio.wait(
                [getter, *waits], timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for wait in waits:
                wait.cancel()
        if getter in done:
            return getter.result()
        getter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getter
        if getter.done() and not getter.cancelled():
            return getter.result()  # it got one as it was cancelled
        return None

    async def _skip_quiet(self, state: DeliveryState) -> None:
        """Changes the destination does not want still move its cursor, while nothing waits."""
        if self._queue.empty() and not self._carried and self._seen > state.cursor:
            await self._store.skip_to(self.spec.id, self._owner, self._seen)

    async def _observe_lag(self, state: DeliveryState) -> None:
        """Tell the lag, at most once per ``refresh_seconds`` (two reads of the feed)."""
        now = asyncio.get_running_loop().time()
        if now - self._lag_told < self._rules.refresh_seconds:
            return
        self._lag_told = now
        head = await self._repos.changes.head()
        waiting = await self._repos.changes.read(state.cursor, limit=1, upto=head)
        seconds = (self._wall() - waiting[0].at).total_seconds() if waiting else 0.0
        self._observer.lag(self.spec.id, max(0.0, seconds), max(0, head - state.cursor))

    async def _send_changes(self, state: DeliveryState, changes: list[Change]) -> DeliveryState | None:
        messages, effects, used = await self._messages(changes, record=True)
        self._carried = changes[used:] + self._carried
        taken = changes[:used]
        if not messages:
            await self._store.skip_to(self.spec.id, self._owner, taken[-1].seq)
            return await self._store.state(self.spec.id)
        batch_id = new_batch_id()
        outbox = Outbox(
            id=batch_id,
            kind="feed",
            body=batch_body(batch_id, self.spec.id, messages),
            count=len(messages),
            first=taken[0].seq,
            last=taken[-1].seq,
            effects=effects,
        )
        if not await self._store.write_outbox(self.spec.id, self._owner, outbox):
            return None
        return replace(state, outbox=outbox)

    async def _messages(
        self, changes: list[Change], *, record: bool
    ) -> tuple[list[dict[str, object]], tuple[ProfileEffect, ...], int]:
        """The messages for as many of ``changes`` as fit one batch, what they leave recorded
        per profile, and how many changes they cover."""
        ids = sorted({change.profile_id for change in changes})
        profiles = await self._repos.profiles.get_many(ids)
        sent: dict[str, SentRecord | None] = dict(await self._store.sent(self.spec.id, ids))
        messages: list[dict[str, object]] = []
        effects: dict[str, ProfileEffect] = {}
        used = 0
        for change in changes:
            outcome = messages_for(
                self.spec, change, profiles.get(change.profile_id), sent.get(change.profile_id)
            )
            if messages and len(messages) + len(outcome.messages) > self.spec.delivery.max_batch:
                break
            used += 1
            messages += outcome.messages
            if outcome.forget:
                sent[change.profile_id] = None
                effects[change.profile_id] = ProfileEffect(change.profile_id, None, forget=True)
            elif outcome.record is not None:
                sent[change.profile_id] = outcome.record
                effects[change.profile_id] = ProfileEffect(change.profile_id, outcome.record)
        return messages, (tuple(effects.values()) if record else ()), used

    async def _deliver(
        self, state: DeliveryState, outbox: Outbox, stopping: asyncio.Event
    ) -> DeliveryState | None:
        """Send the batch in flight when it is due; the state after the attempt."""
        now = self._wall()
        if outbox.next_at is not None and now < outbox.next_at:
            await self._pause(stopping, (outbox.next_at - now).total_seconds())
            return await self._store.state(self.spec.id) if self._poke.is_set() else state
        await self._keep_rate()
        body = outbox.body.encode()
        headers = signed_headers(outbox.id, body, self.destination.secrets.valid(now), now)
        answer = await post(self._http, self.spec.url, body, headers, self._rules)
        attempt = outbox.attempts + 1
        status = "delivered" if answer.delivered else "gone" if answer.gone else "failed"
        self._observer.attempted(self.spec.id, status, answer.status_code)
        await self._log(outbox, answer, attempt, status)
        if answer.delivered:
            return await self._acknowledged(outbox)
        if answer.gone:
            await self._disable(f"the receiver answered 410 Gone at {iso(now)}")
            return None
        first = outbox.first_attempt_at or now
        if (now - first).total_seconds() >= self._rules.retry_for_seconds:
            return await self._give_up(state, replace(outbox, attempts=attempt, last_error=answer.error))
        wait = self._rules.retry_wait(attempt, answer.retry_after)
        retried = replace(
            outbox,
            attempts=attempt,
            first_attempt_at=first,
            next_at=now + timedelta(seconds=wait),
            last_error=answer.error,
        )
        log.info(
            "destination %s: batch %s attempt %d failed (%s); next in %.1f s",
            self.spec.id,
            outbox.id,
            attempt,
            answer.error,
            wait,
        )
        failing_since = state.failing_since or now
        if not await self._store.record_attempt(self.spec.id, self._owner, retried, failing_since):
            return None
        return replace(state, outbox=retried, failing_since=failing_since)

    async def _keep_rate(self) -> None:
        loop = asyncio.get_running_loop()
        gap = 1.0 / self.spec.delivery.rate_per_second - (loop.time() - self._last_send)
        if gap > 0:
            await asyncio.sleep(gap)
        self._last_send = loop.time()

    async def _log(self, outbox: Outbox, answer: Answer, attempt: int, status: str) -> None:
        record = DeliveryRecord(
            destination=self.spec.id,
            batch_id=outbox.id,
            kind=outbox.kind,
            at=self._wall(),
            status=status,
            attempt=attempt,
            latency_ms=answer.latency_ms,
            status_code=answer.status_code,
            count=outbox.count,
            error=answer.error,
        )
        try:
            await self._store.log(record)
        except Exception:
            log.exception("destination %s: writing the delivery log failed", self.spec.id)

    async def _acknowledged(self, outbox: Outbox) -> DeliveryState | None:
        await self._store.keep_sent(self.spec.id, outbox.effects)
        settled = await self._store.settle(self.spec.id, self._owner, outbox, delivered=True)
        if outbox.kind == "replay":
            await self._store.remove_dead_letter(outbox.id)
        return settled

    async def _give_up(self, state: DeliveryState, outbox: Outbox) -> DeliveryState | None:
        letter = DeadLetter(
            batch_id=outbox.id,
            destination=self.spec.id,
            kind=outbox.kind,
            body=outbox.body,
            count=outbox.count,
            attempts=outbox.attempts,
            error=outbox.last_error,
            at=self._wall(),
            effects=outbox.effects,
        )
        await self._store.add_dead_letter(letter)
        self._observer.dead_lettered(self.spec.id)
        await self._log(outbox, Answer(None, 0, outbox.last_error), outbox.attempts, "dead_lettered")
        settled = await self._store.settle(self.spec.id, self._owner, outbox, delivered=False)
        if settled is None:
            return None
        failing = state.failing_since or self._wall()
        too_long = (self._wall() - failing).total_seconds() >= self._rules.pause_after_failing_seconds
        if settled.dead_in_row >= self._rules.pause_after_dead_letters or too_long:
            reason = f"failing since {iso(failing)}: {settled.dead_in_row} batches in a row given up"
            await self._store.set_state(self.spec.id, DestinationState.PAUSED, reason, self._wall())
            self._observer.paused(self.spec.id)
            log.warning("destination %s paused: %s", self.spec.id, reason)
            self._stop.set()
            return None
        return settled

    async def _disable(self, reason: str) -> None:
        await self._store.set_state(self.spec.id, DestinationState.DISABLED, reason, self._wall())
        self._observer.paused(self.spec.id)
        log.warning("destination %s disabled: %s", self.spec.id, reason)
        self._stop.set()

    # The admin's requests

    async def _work(self, state: DeliveryState, request: Request) -> DeliveryState | None:
        match request.kind:
            case "replay":
                return await self._replay(state, request)
            case "resend":
                return await self._resend(state, request)
            case _:
                return await self._resync(state, request)

    async def _finish(self, request: Request) -> DeliveryState | None:
        await self._store.finish_request(self.spec.id, self._owner, request.id)
        return await self._store.state(self.spec.id)

    async def _replay(self, state: DeliveryState, request: Request) -> DeliveryState | None:
        letter = await self._store.dead_letter(request.batch_id)
        if letter is None or letter.destination != self.spec.id:
            return await self._finish(request)
        outbox = Outbox(
            id=letter.batch_id, kind="replay", body=letter.body, count=letter.count, effects=letter.effects
        )
        if not await self._store.write_outbox(self.spec.id, self._owner, outbox):
            return None
        return await self._finish(request)

    async def _resend(self, state: DeliveryState, request: Request) -> DeliveryState | None:
        """The wanted changes dated ``since``-``until``, again, as new batches."""
        after = int(request.after or "0")
        picked: list[Change] = []
        last = after
        while len(picked) < self.spec.delivery.max_batch:
            page = await self._repos.changes.read(last, limit=PAGE, upto=state.cursor)
            if not page:
                break
            for change in page:
                if len(picked) >= self.spec.delivery.max_batch:
                    break
                last = change.seq
                if request.until is not None and change.at >= request.until:
                    return await self._resend_batch(state, request, picked, last, finished=True)
                if (request.since is None or change.at >= request.since) and self._wanted(change):
                    picked.append(change)
        finished = len(picked) < self.spec.delivery.max_batch
        return await self._resend_batch(state, request, picked, last, finished=finished)

    async def _resend_batch(
        self, state: DeliveryState, request: Request, picked: list[Change], last: int, *, finished: bool
    ) -> DeliveryState | None:
        messages, _, used = await self._messages(picked, record=False)
        if used < len(picked):
            last, finished = picked[used].seq - 1, False
        if not messages:
            return await self._finish(request) if finished else await self._progress(request, last)
        batch_id = new_batch_id()
        outbox = Outbox(
            id=batch_id, kind="resend", body=batch_body(batch_id, self.spec.id, messages), count=len(messages)
        )
        if not await self._store.write_outbox(self.spec.id, self._owner, outbox, request_after=str(last)):
            return None
        if finished:
            await self._store.finish_request(self.spec.id, self._owner, request.id)
        return await self._store.state(self.spec.id)

    async def _progress(self, request: Request, after: int) -> DeliveryState | None:
        await self._store.queue_progress(self.spec.id, self._owner, str(after))
        return await self._store.state(self.spec.id)

    async def _resync(self, state: DeliveryState, request: Request) -> DeliveryState | None:
        """Every current member of the request's segment that grants the purpose, as
        ``segment.entered``, a page at a time."""
        page = await self._repos.segment_members.page(
            request.segment, self.spec.delivery.max_batch, request.after or None
        )
        if not page:
            return await self._finish(request)
        ids = [profile_id for profile_id, _ in page]
        profiles = await self._repos.profiles.get_many(ids)
        sent = await self._store.sent(self.spec.id, ids)
        now = self._wall()
        messages: list[dict[str, object]] = []
        effects = []
        for profile_id in ids:
            profile = profiles.get(profile_id)
            consent = None if profile is None else profile.consents.get(self.spec.consent_purpose)
            if profile is None or consent is None or not consent.granted:
                continue
            outcome = entered_messages(self.spec, profile, request.segment, now)
            messages += outcome.messages
            before = sent.get(profile_id, SentRecord())
            assert outcome.record is not None, "an entry is recorded"
            hashes = {**before.hashes, **outcome.record.hashes}
            segments = tuple(dict.fromkeys([*before.segments, request.segment]))
            effects.append(ProfileEffect(profile_id, SentRecord(hashes, segments)))
        last = ids[-1]
        if not messages:
            await self._store.queue_progress(self.spec.id, self._owner, last)
            return await self._store.state(self.spec.id)
        batch_id = new_batch_id()
        outbox = Outbox(
            id=batch_id,
            kind="resync",
            body=batch_body(batch_id, self.spec.id, messages),
            count=len(messages),
            effects=tuple(effects),
        )
        if not await self._store.write_outbox(self.spec.id, self._owner, outbox, request_after=last):
            return None
        return await self._store.state(self.spec.id)


class Deliveries:
    """This process's deliverers, one per enabled destination."""

    def __init__(
        self,
        repos: Repositories,
        follower: FeedFollower,
        rules: DeliveryRules,
        *,
        observer: DeliveryObserver | None = None,
        owner: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        wall: Callable[[], datetime] = wall_clock,
    ) -> None:
        self._repos = repos
        self._follower = follower
        self.rules = rules
        self._observer = observer or Unobserved()
        self.owner = owner or uuid.uuid4().hex
        self._transport = transport
        self._wall = wall
        self._wake = asyncio.Event()
        self._running: dict[str, tuple[Deliverer, asyncio.Task[None]]] = {}

    def wake(self, destination_id: str | None = None) -> None:
        """Look at the destinations again now (after an admin change in this process)."""
        if destination_id is not None and destination_id in self._running:
            self._running[destination_id][0].poke()
        self._wake.set()

    def holds(self, destination_id: str) -> bool:
        running = self._running.get(destination_id)
        return running is not None and running[0].holding

    async def run(self, stopping: asyncio.Event) -> None:
        async with httpx.AsyncClient(
            follow_redirects=False, transport=self._transport, timeout=self.rules.timeout_seconds
        ) as http:
            try:
                while not stopping.is_set():
                    try:
                        await self._refresh(http, stopping)
                    except Exception:
                        log.exception("listing the destinations failed; trying again")
                    waits = [asyncio.ensure_future(event.wait()) for event in (self._wake, stopping)]
                    await asyncio.wait(
                        waits, timeout=self.rules.refresh_seconds, return_when=asyncio.FIRST_COMPLETED
                    )
                    for wait in waits:
                        wait.cancel()
                    self._wake.clear()
            finally:
                await self._stop_all()

    async def _refresh(self, http: httpx.AsyncClient, stopping: asyncio.Event) -> None:
        enabled = {destination.id: destination for destination in await self._repos.destinations.enabled()}
        for destination_id, (deliverer, task) in list(self._running.items()):
            current = enabled.get(destination_id)
            if task.done() or current is None or current.updated_at != deliverer.destination.updated_at:
                deliverer.stop()
                await asyncio.gather(task, return_exceptions=True)
                del self._running[destination_id]
        for destination_id, destination in enabled.items():
            if destination_id not in self._running:
                deliverer = Deliverer(
                    destination,
                    self._repos,
                    self._follower,
                    self.rules,
                    http,
                    owner=self.owner,
                    observer=self._observer,
                    wall=self._wall,
                )
                self._running[destination_id] = (deliverer, asyncio.create_task(deliverer.run(stopping)))

    async def _stop_all(self) -> None:
        for deliverer, _ in self._running.values():
            deliverer.stop()
        tasks = [task for _, task in self._running.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
