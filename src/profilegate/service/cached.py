"""A value read from the store and kept per process for a while: configuration that every
request needs (the active tier policy, the segments) but that changes rarely."""

import time
from collections.abc import Awaitable, Callable


class Cached[T]:
    """``load``'s value, read again once ``seconds`` have passed since it was read or set.

    A change made through this process is ``set`` (or ``forget``-ed) at once; one made by
    another process shows within ``seconds``.
    """

    def __init__(
        self, load: Callable[[], Awaitable[T]], seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._load = load
        self._seconds = seconds
        self._clock = clock
        self._entry: tuple[float, T] | None = None  # when it was read or set, and the value

    async def get(self) -> T:
        entry = self._entry
        if entry is not None and self._clock() - entry[0] < self._seconds:
            return entry[1]
        value = await self._load()
        self.set(value)
        return value

    def set(self, value: T) -> None:
        self._entry = (self._clock(), value)

    def forget(self) -> None:
        self._entry = None
