"""The shop's day rollups written behind: off the tracking request, one bulk write a second.

Tracking hands each batch's rollups to ``WriteBehindShopDays`` (the gateway's ``shop_days``),
which merges them in memory and writes them every ``flush_seconds`` in one ordered bulk,
together with this process's mark (``storage.shop_days.WriterMark``): from when on the event log
may hold events whose rollups are not written yet. A tracking request costs no round trip for
the rollups; a busy process writes them once a second for all its requests.

Nothing is lost to a crash: an event is logged before its rollups are handed over, and the mark
only moves past a receipt time once every request received before it has had its rollups
written (a request in flight holds it back). A process whose mark has not been renewed for
``silent_seconds`` is taken for dead by any other process (one restarted in its place
included): the events logged since its ``safeFrom`` are rolled up again (rollups are sets, so
what was written already counts once) and its mark is dropped. A live process renews its mark
at every flush, and ``silent_seconds`` is more than three flushes (a setting check); a process
stalled for longer than ``silent_seconds`` is taken for dead too, which costs nothing but a
second write, and it marks itself again at its next flush.

Within a process, a read of the rollups (``up_to``) writes the buffer first, so the process's
own answers include every event it acknowledged; another process's events appear within
``flush_seconds``. The rollups of an event that the log holds but that was refused when applied
are taken in by a recovery, as by ``rebuild-aggregates``.
"""

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from profilegate.domain.shop_days import DayRollup, merged
from profilegate.service.shop_metrics import logged_once, logged_rollups
from profilegate.storage.events import EventLog
from profilegate.storage.shop_days import ShopDayRepository, WriterMark

log = logging.getLogger("profilegate.shop_rollups")

SILENT_SECONDS = 60.0  # by default, a mark not renewed for this long is a dead process's
HEARTBEAT_SHARE = 6  # an idle process renews its mark every silent_seconds / 6
CLOCK_MARGIN = timedelta(seconds=5)  # receipts of requests taken a little before the clock read


class WriteBehindShopDays(ShopDayRepository):
    def __init__(
        self,
        stored: ShopDayRepository,
        events: EventLog,
        zone: ZoneInfo,
        clock: Callable[[], datetime],
        writer: str,
        flush_seconds: float,
        silent_seconds: float = SILENT_SECONDS,
    ) -> None:
        self._stored, self._events, self._zone, self._clock = stored, events, zone, clock
        self.writer, self.flush_seconds, self.silent_seconds = writer, flush_seconds, silent_seconds
        self._buffer: list[DayRollup] = []  # as handed over; merged once, when written
        self._in_flight: Counter[datetime] = Counter()
        self._lock = asyncio.Lock()
        self._last_mark: datetime | None = None

    @contextlib.contextmanager
    def receiving(self, received_at: datetime) -> Iterator[None]:
        """Around a tracking request received at ``received_at``: the mark stays before it until
        the rollups it hands over are written."""
        self._in_flight[received_at] += 1
        try:
            yield
        finally:
            self._in_flight[received_at] -= 1
            if not self._in_flight[received_at]:
                del self._in_flight[received_at]

    async def add(self, rollups: Iterable[DayRollup], mark: WriterMark | None = None) -> None:
        """Merged into the buffer (no round trip); ``mark`` is this class's own business."""
        assert mark is None, "the write-behind buffer writes its own mark"
        self._buffer.extend(rollups)

    async def up_to(self, last: date) -> list[DayRollup]:
        if self._buffer:  # this process's own events first; an empty buffer has nothing to add
            await self.flush()
        return await self._stored.up_to(last)

    async def clear(self) -> None:
        async with self._lock:
            self._buffer = []
            await self._stored.clear()

    async def writers_silent_since(self, moment: datetime) -> list[WriterMark]:
        return await self._stored.writers_silent_since(moment)

    async def drop_writer(self, writer: str) -> None:
        await self._stored.drop_writer(writer)

    async def flush(self) -> None:
        """Write the buffer and this process's mark, in one round trip; on failure the buffer is
        kept for the next flush."""
        async with self._lock:
            now = self._clock()
            rollups, self._buffer = self._buffer, []
            # A request in flight may have logged events whose rollups it has not handed over.
            safe_from = min([now, *self._in_flight]) - CLOCK_MARGIN
            try:
                await self._stored.add(merged(rollups).values(), WriterMark(self.writer, safe_from, now))
            except BaseException:
                self._buffer[:0] = rollups
                raise
            self._last_mark = now

    async def start(self) -> None:
        """Say, before any request, that nothing before now is held here."""
        await self.flush()

    async def stop(self) -> None:
        """Write what is held and drop the mark: nothing is left to recover."""
        await self.flush()
        await self._stored.drop_writer(self.writer)

    async def recover(self) -> int:
        """Roll up again the events logged since each silent process's mark; how many."""
        since = self._clock() - timedelta(seconds=self.silent_seconds)
        silent = await self._stored.writers_silent_since(since)
        recovered = 0
        for mark in silent:
            if mark.writer == self.writer:
                continue
            logged = await logged_once(self._events.received_since(mark.safe_from))
            await self._stored.add(logged_rollups(logged, self._zone).values())
            await self._stored.drop_writer(mark.writer)
            log.warning(
                "rolled up again %d events logged since %s by the silent process %s",
                len(logged),
                mark.safe_from.isoformat(),
                mark.writer,
            )
            recovered += len(logged)
        return recovered

    async def run(self, stopping: asyncio.Event) -> None:
        """Flush every ``flush_seconds`` (or renew the mark when idle), look for silent processes
        every ``silent_seconds``; a failed write is logged and retried at the next turn."""
        last_recovery = asyncio.get_running_loop().time()
        try:
            await self.recover()
        except Exception:
            log.exception("recovering silent processes' rollups failed; again in %.0fs", self.silent_seconds)
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self.flush_seconds)
            if stopping.is_set():
                break
            try:
                if self._buffer or self._mark_due():
                    await self.flush()
                if asyncio.get_running_loop().time() - last_recovery >= self.silent_seconds:
                    last_recovery = asyncio.get_running_loop().time()
                    await self.recover()
            except Exception:
                log.exception("writing the shop's day rollups failed; retrying in %.1fs", self.flush_seconds)

    def _mark_due(self) -> bool:
        due = timedelta(seconds=self.silent_seconds / HEARTBEAT_SHARE)
        return self._last_mark is None or self._clock() - self._last_mark >= due
