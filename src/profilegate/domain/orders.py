"""Orders are the unit of truth: what a profile's order index knows of each order, and which
order events it counts (docs/metrics.md, "Orders, returns and cancellations").

- A return or cancellation refers to an order the profile has counted, and is not dated
  before it; a cancellation is not dated before a return already counted for its order.
- A return takes at most what is left of its order (its total minus the returns so far;
  nothing of a cancelled order). A cancellation takes what is left.
- An order is counted once: a second ``order_completed`` under another event id is refused.

Tracking refuses such events before they are logged (``order_refusal``); the fold of logged
events skips them, and counts a return at most what is left, so that no figure goes negative
whatever an older version logged.
"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import EventType, TrackedEvent
from profilegate.domain.money import Currencies


class OrderEntry(BaseModel):
    """What is known of one counted order: its total, day and instant, the event that counted
    it, whether it was cancelled, the money returned so far and when the latest return was.

    An entry without a total was written by an older version for a return or cancellation whose
    order had not been seen; such an entry refers to no counted order."""

    model_config = ConfigDict(frozen=True)

    total: int | None = None
    day: str | None = None
    cancelled: bool = False
    returned: int = 0
    at: datetime | None = None
    returned_at: datetime | None = None
    event_id: str | None = None

    @property
    def counted(self) -> bool:
        return self.total is not None and self.day is not None

    @property
    def left(self) -> int:
        """What a return may still take: nothing of a cancelled order."""
        if self.total is None or self.cancelled:
            return 0
        return max(0, self.total - self.returned)

    @property
    def cancelled_amount(self) -> int:
        """What its cancellation takes back: the total less the returns before it."""
        if self.total is None or not self.cancelled:
            return 0
        return max(0, self.total - self.returned)


class OrderRefused(InvalidInput):
    """An order event the profile's order index does not allow, naming the field at fault."""


def order_refusal(
    entry: OrderEntry | None, event: TrackedEvent, currencies: Currencies
) -> OrderRefused | None:
    """Why the profile may not count this order event, or None. ``entry``: its order as known."""
    order_id = event.order_id or ""
    match event.type:
        case EventType.ORDER_COMPLETED:
            return _completed_refusal(entry, event, order_id)
        case EventType.ORDER_RETURNED | EventType.ORDER_CANCELLED:
            return _follower_refusal(entry, event, order_id, currencies)
        case _:
            return None


def entry_after(entry: OrderEntry | None, event: TrackedEvent) -> OrderEntry:
    """The order's entry once the profile counts ``event`` (an order, a return, a cancellation).

    An order taking the place of an older version's entry without a total keeps its marks."""
    known = entry or OrderEntry()
    match event.type:
        case EventType.ORDER_COMPLETED:
            return known.model_copy(
                update={"total": event.amount, "day": event.day, "at": event.at, "event_id": event.id}
            )
        case EventType.ORDER_RETURNED:
            latest = event.at if known.returned_at is None else max(known.returned_at, event.at)
            return known.model_copy(update={"returned": known.returned + event.amount, "returned_at": latest})
        case EventType.ORDER_CANCELLED:
            return known.model_copy(update={"cancelled": True})
        case _:
            return known


def is_replay(entry: OrderEntry | None, event: TrackedEvent) -> bool:
    """The very event that counted the order, sent again: a duplicate, not a second order."""
    return (
        event.type is EventType.ORDER_COMPLETED
        and entry is not None
        and entry.counted
        and entry.event_id == event.id
    )


def _completed_refusal(entry: OrderEntry | None, event: TrackedEvent, order_id: str) -> OrderRefused | None:
    if entry is None or not entry.counted or entry.event_id == event.id:
        return None
    first = "" if entry.event_id is None else f", as event {entry.event_id}"
    return OrderRefused("properties.orderId", f"order {order_id} was counted already{first}")


def _follower_refusal(
    entry: OrderEntry | None, event: TrackedEvent, order_id: str, currencies: Currencies
) -> OrderRefused | None:
    if entry is None or not entry.counted:
        return OrderRefused(
            "properties.orderId",
            f"no order {order_id} is known for this customer: "
            "a return or cancellation follows its order_completed",
        )
    if entry.at is not None and event.at < entry.at:
        return OrderRefused(
            "at", f"{event.at.isoformat()} is before order {order_id} was placed ({entry.at.isoformat()})"
        )
    if event.type is EventType.ORDER_CANCELLED:
        return _cancel_refusal(entry, event, order_id)
    return _return_refusal(entry, event, order_id, currencies)


def _cancel_refusal(entry: OrderEntry, event: TrackedEvent, order_id: str) -> OrderRefused | None:
    if entry.returned_at is not None and event.at < entry.returned_at:
        return OrderRefused(
            "at",
            f"{event.at.isoformat()} is before the latest return of order {order_id} "
            f"({entry.returned_at.isoformat()}): a cancellation takes what is left after its returns",
        )
    return None


def _return_refusal(
    entry: OrderEntry, event: TrackedEvent, order_id: str, currencies: Currencies
) -> OrderRefused | None:
    if entry.cancelled:
        return OrderRefused(
            "properties.orderId", f"order {order_id} was cancelled: nothing of it is left to return"
        )
    if event.amount > entry.left:
        base = currencies.base
        return OrderRefused(
            "properties.amount",
            f"the return of {currencies.format(event.amount)} {base} exceeds the "
            f"{currencies.format(entry.left)} {base} left of order {order_id} "
            f"({currencies.format(entry.total or 0)} {base})",
        )
    return None
