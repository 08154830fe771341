"""Following the change feed in one process and fanning it out to its subscribers.

One follower per process reads the feed in place order and offers each change to every
subscription's bounded queue; offering never waits, so a slow subscriber never slows the
others: when its queue is full it is marked lagged and told (``on_lag``), and it resumes
from its last cursor. The follower is woken at once by writes of this process, by a change
stream where the store has one, and otherwise polls every ``poll_seconds``. A change stream
that ends (invalidated) or fails is reopened from its resume token after a back-off that
doubles from ``stream_retry_seconds`` up to ``stream_retry_max_seconds``; the poll keeps the
feed moving meanwhile, so a stream that is down delays changes by at most ``poll_seconds``.

Places are handed out before their changes are stored, so a later place can be stored
first. The follower never passes a hole at once: it waits up to ``hole_seconds`` for the
write that owns the place (a writer that died leaves a hole for good), so each subscription
gets the feed in order, without gaps, at least once.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from profilegate.domain.changes import Change
from profilegate.storage.changes import ChangeLog, ChangeStreamFailed, ResumeToken

log = logging.getLogger("profilegate.feed")

PAGE = 500
HOLE_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class FeedRules:
    retention: timedelta = timedelta(days=7)
    poll_seconds: float = 0.5
    queue_size: int = 1000
    hole_seconds: float = 5.0
    stream_retry_seconds: float = 1.0
    stream_retry_max_seconds: float = 30.0

    def stream_retry_delay(self, failures: int) -> float:
        """Seconds before reopening a change stream that ended or failed ``failures`` times in a
        row (without passing a change in between)."""
        return min(self.stream_retry_max_seconds, self.stream_retry_seconds * 2.0 ** max(0, failures - 1))


class Subscription:
    """One subscriber's queue of changes after ``start`` (the follower's place when it joined)."""

    def __init__(self, start: int, size: int, on_lag: Callable[[], None]) -> None:
        self.start = start
        self.lagged = False
        self._queue: asyncio.Queue[Change | None] = asyncio.Queue(size)
        self._on_lag = on_lag

    def offer(self, change: Change) -> None:
        if self.lagged:
            return
        try:
            self._queue.put_nowait(change)
        except asyncio.QueueFull:
            self.lagged = True
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(None)
            self._on_lag()

    async def next(self) -> Change | None:
        """The next live change; None once the subscriber has fallen behind."""
        return await self._queue.get()


class FeedFollower:
    def __init__(
        self,
        changes: ChangeLog,
        rules: FeedRules,
        clock: Callable[[], float] = time.monotonic,
        *,
        on_stream_restart: Callable[[str], None] = lambda reason: None,
    ) -> None:
        """``on_stream_restart(reason)``: each time the change stream ended or failed and is
        to be reopened (reasons: ``invalidated`` and those of ``ChangeStreamFailed``)."""
        self.changes = changes
        self.rules = rules
        self.stream_restarts: dict[str, int] = {}
        self._on_stream_restart = on_stream_restart
        self.position = 0
        self._clock = clock
        self._subscriptions: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._hole_since: float | None = None
        self._started = asyncio.Event()
        self._passed_at = clock()
        self._advancing = False
        self.running = False

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    @property
    def seconds_since_pass(self) -> float:
        """Since the follower last passed a change on (or started)."""
        return self._clock() - self._passed_at

    def wake(self) -> None:
        self._wake.set()

    def stored_here(self, changes: Sequence[Change]) -> None:
        """Changes this process just stored, in place order. When they come next and nothing
        else is pending, they are passed on as they are, without reading them back from the
        feed; otherwise the follower is woken to read the feed in order."""
        quiet = not self._advancing and not self._wake.is_set() and self._hole_since is None
        if self.running and quiet and changes and changes[0].seq == self.position + 1:
            for change in changes:
                self._pass(change)
        else:
            self.wake()

    async def run(self, stopping: asyncio.Event) -> None:
        """Follow the feed until ``stopping`` is set; ``running`` while it does."""
        await self.start()
        self.running = True
        watcher = asyncio.create_task(self._watch()) if self.changes.streams_changes else None
        try:
            while not stopping.is_set():
                wait = HOLE_POLL_SECONDS if self._hole_since is not None else self.rules.poll_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()
                if stopping.is_set():
                    return
                try:
                    await self.advance()
                except Exception:
                    log.exception("reading the change feed failed; trying again")
                    await asyncio.sleep(self.rules.poll_seconds)
        finally:
            self.running = False
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)

    async def start(self) -> None:
        """Take up the feed at its present end."""
        self.position = await self.changes.head()
        self._passed_at = self._clock()
        self._started.set()

    @contextlib.asynccontextmanager
    async def subscribe(self, on_lag: Callable[[], None] = lambda: None) -> AsyncIterator[Subscription]:
        await self._started.wait()
        subscription = Subscription(self.position, self.rules.queue_size, on_lag)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    async def advance(self) -> None:
        """Offer every stored change after the current place, in order, up to the first hole."""
        self._advancing = True
        try:
            await self._read_on()
        finally:
            self._advancing = False

    async def _read_on(self) -> None:
        head = await self.changes.head()
        while self.position < head:
            batch = await self.changes.read(self.position, limit=PAGE, upto=head)
            for change in batch:
                if change.seq != self.position + 1 and not self._hole_expired(change.seq):
                    return
                self._pass(change)
            if len(batch) < PAGE:
                if self.position < head and self._hole_expired(head + 1):
                    self.position = head  # the last places' writers died
                return

    def _hole_expired(self, next_seq: int) -> bool:
        """Whether to give up waiting for the places before ``next_seq``."""
        now = self._clock()
        if self._hole_since is None:
            self._hole_since = now
        if now - self._hole_since < self.rules.hole_seconds:
            return False
        log.warning(
            "change feed: places %d-%d were never written; passing them", self.position + 1, next_seq - 1
        )
        self._hole_since = None
        return True

    def _pass(self, change: Change) -> None:
        self._hole_since = None
        self._passed_at = self._clock()
        self.position = change.seq
        for subscription in list(self._subscriptions):
            subscription.offer(change)

    async def _watch(self) -> None:
        """Wake the follower on each insert the change stream reports; reopen the stream from
        its resume token whenever it ends or fails, after a back-off."""
        token: ResumeToken | None = None
        failures = 0
        while True:
            try:
                async for resume_token in self.changes.watch(token):
                    token, failures = resume_token, 0
                    self.wake()
                reason, detail = "invalidated", "the stream was invalidated"
            except ChangeStreamFailed as failure:
                reason, detail = failure.reason, str(failure)
                if failure.token_lost:
                    token = None
            failures += 1
            delay = self.rules.stream_retry_delay(failures)
            log.warning(
                "change stream ended (%s: %s); polling the feed every %.2fs, reopening it in %.1fs",
                reason,
                detail,
                self.rules.poll_seconds,
                delay,
            )
            self.stream_restarts[reason] = self.stream_restarts.get(reason, 0) + 1
            self._on_stream_restart(reason)
            self.wake()  # what the stream missed while it went down
            await asyncio.sleep(delay)


class SubscriberLagged(Exception):
    def __init__(self, last: Change | None) -> None:
        super().__init__("the subscriber fell behind the feed")
        self.last = last


async def follow(
    follower: FeedFollower, subscription: Subscription, after: int | None, admits: Callable[[Change], bool]
) -> AsyncIterator[Change]:
    """The changes after place ``after`` (None: from now) that ``admits`` lets through: the
    stored ones up to where the subscription joined, then live ones, each once, in order.

    Raises ``SubscriberLagged`` once the subscription's queue overflowed.
    """
    # "From now on" is from the last place handed out, which the follower may not have reached.
    last = await follower.changes.head() if after is None else after
    delivered: Change | None = None
    while last < subscription.start:
        batch = await follower.changes.read(last, limit=PAGE, upto=subscription.start)
        if not batch:
            break
        for change in batch:
            last = change.seq
            if admits(change):
                delivered = change
                yield change
    while True:
        live = await subscription.next()
        if live is None:
            raise SubscriberLagged(delivered)
        if live.seq <= last:
            continue
        last = live.seq
        if admits(live):
            delivered = live
            yield live
