"""The ``shop_days`` collection: one rollup document per shop day, and per day and channel.

``_id`` is ``"2026-03-29"`` (all channels) or ``"2026-03-29|web"``. A tracked batch adds to its
days in one bulk write, with operators that make a repeated write change nothing
(``$addToSet`` on the sets, ``$set`` of one field per order and per product view): a replay
heals a lost write.

The gateway writes them behind (``service.shop_rollups``): each process keeps one document of
its own here, ``_id`` ``"writer|<process>"`` (no ``day``, so no read of the days finds it),
saying from when on the event log may hold events whose rollups it has not written yet
(``safeFrom``) and when it last said so (``heartbeat``); it is written in the same bulk as the
rollups, after them. A process that stops saying so is taken for dead, and the events logged
since its ``safeFrom`` are rolled up again.

A year holds at most 366 x 7 documents, in both layouts one collection (there is no new
document per event, so the embedded store's cost of creating documents does not grow with
traffic). The sets grow with a day's distinct visitors: a 16-hex-digit digest each, so a day
document stays under MongoDB's 16 MiB document limit up to about 500,000 distinct visitors a
day (https://www.mongodb.com/docs/manual/reference/limits/).
"""

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo import UpdateOne

from profilegate.domain.events import Channel
from profilegate.domain.shop_days import DayRollup, ProductViewMark
from profilegate.domain.shop_marks import OrderLine, OrderMark, Touch
from profilegate.storage.documents import Collection, Document

# Every day document up to the last day asked for comes in one batch (the first batch of a
# find holds 101 documents unless told otherwise); only past 16 MiB does the driver ask again.
READ_BATCH = 100_000
WRITER_PREFIX = "writer|"


@dataclass(frozen=True)
class WriterMark:
    """What one process says of the rollups it holds: the event log may hold events received
    from ``safe_from`` on whose rollups it has not written; said at ``heartbeat``."""

    writer: str
    safe_from: datetime
    heartbeat: datetime


class ShopDayRepository:
    def __init__(self, collection: Collection) -> None:
        self._collection = collection

    async def add(self, rollups: Iterable[DayRollup], mark: WriterMark | None = None) -> None:
        """Add to the stored rollups, then record ``mark``, in one round trip (an ordered bulk:
        a mark is never stored without the rollups before it)."""
        writes = [UpdateOne({"_id": r.key}, _addition(r), upsert=True) for r in rollups]
        if mark is not None:
            fields = {"safeFrom": mark.safe_from, "heartbeat": mark.heartbeat}
            writes.append(UpdateOne({"_id": WRITER_PREFIX + mark.writer}, {"$set": fields}, upsert=True))
        if writes:
            await self._collection.bulk_write(writes, ordered=True)

    def receiving(self, received_at: datetime) -> contextlib.AbstractContextManager[None]:
        """Around a tracking request received at ``received_at``: nothing to hold back when the
        rollups are written at once (see ``service.shop_rollups`` for the buffer that does)."""
        return contextlib.nullcontext()

    async def writers_silent_since(self, moment: datetime) -> list[WriterMark]:
        """The marks of the processes that said nothing since ``moment``."""
        writers = {"$gte": WRITER_PREFIX, "$lt": WRITER_PREFIX + "\uffff"}
        cursor = self._collection.find({"_id": writers, "heartbeat": {"$lt": moment}})
        return [
            WriterMark(found["_id"].removeprefix(WRITER_PREFIX), found["safeFrom"], found["heartbeat"])
            async for found in cursor
        ]

    async def drop_writer(self, writer: str) -> None:
        await self._collection.delete_one({"_id": WRITER_PREFIX + writer})

    async def up_to(self, last: date) -> list[DayRollup]:
        """Every stored rollup of the days up to ``last``, in one round trip."""
        cursor = self._collection.find({"day": {"$lte": last.isoformat()}}, batch_size=READ_BATCH)
        return [_rollup(document) async for document in cursor]

    async def clear(self) -> None:
        await self._collection.delete_many({})


def _addition(rollup: DayRollup) -> dict[str, Any]:
    update: dict[str, Any] = {
        "$setOnInsert": {
            "day": rollup.day.isoformat(),
            "channel": None if rollup.channel is None else rollup.channel.value,
        },
        "$addToSet": {"visitors": {"$each": sorted(rollup.visitors)}}
        | {f"times.{v}": {"$each": sorted(times)} for v, times in rollup.times.items()},
    }
    if rollup.buyers:
        update["$addToSet"]["buyers"] = {"$each": sorted(rollup.buyers)}
    amounts = (
        {f"orders.{k}": v for k, v in rollup.orders.items()}
        | {f"returns.{k}": v for k, v in rollup.returns.items()}
        | {f"productViews.{k}": [v.visitor, v.at, v.engaged_seconds] for k, v in rollup.product_views.items()}
        | {f"orderMarks.{k}": _order_mark(mark) for k, mark in rollup.order_marks.items()}
        | {f"touches.{k}": [t.visitor, t.at, t.source, t.medium] for k, t in rollup.touches.items()}
        | {f"returners.{k}": visitor for k, visitor in rollup.returners.items()}
        | {f"returnOrders.{k}": order for k, order in rollup.return_orders.items()}
        | {f"cancellations.{k}": visitor for k, visitor in rollup.cancellations.items()}
    )
    if amounts:
        update["$set"] = amounts
    return update


def _order_mark(mark: OrderMark) -> list[Any]:
    return [mark.visitor, mark.at, mark.payment_method, [[li.sku, li.units, li.revenue] for li in mark.lines]]


def _read_order_mark(stored: list[Any]) -> OrderMark:
    visitor, at, payment_method, lines = stored
    return OrderMark(visitor, at, payment_method, tuple(OrderLine(*line) for line in lines))


def _rollup(document: Document) -> DayRollup:
    channel = document.get("channel")
    return DayRollup(
        day=date.fromisoformat(document["day"]),
        channel=None if channel is None else Channel(channel),
        visitors=set(document.get("visitors", [])),
        buyers=set(document.get("buyers", [])),
        orders=dict(document.get("orders", {})),
        returns=dict(document.get("returns", {})),
        times={visitor: set(times) for visitor, times in document.get("times", {}).items()},
        product_views={
            key: ProductViewMark(visitor, at, engaged)
            for key, (visitor, at, engaged) in document.get("productViews", {}).items()
        },
        order_marks={key: _read_order_mark(mark) for key, mark in document.get("orderMarks", {}).items()},
        touches={key: Touch(*stored) for key, stored in document.get("touches", {}).items()},
        returners=dict(document.get("returners", {})),
        return_orders=dict(document.get("returnOrders", {})),
        cancellations=dict(document.get("cancellations", {})),
    )
