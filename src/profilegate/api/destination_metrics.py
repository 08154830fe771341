"""The destinations' Prometheus series (``/metrics``): lag, deliveries, failures, dead letters.

Destination ids are an admin's keys (validated: a-z, 0-9, - and _), a handful; past
``MAX_DESTINATIONS`` distinct ones, newcomers are labelled "other".
"""

import contextlib

from prometheus_client import Counter, Gauge

from profilegate.api.prometheus import OTHER

MAX_DESTINATIONS = 100
NO_ANSWER = "none"

lag_seconds = Gauge(
    "profilegate_destination_lag_seconds",
    "Age of the oldest change a destination has not acknowledged (0: none waits), by destination; "
    "set by the process delivering it.",
    ["destination"],
    multiprocess_mode="livemax",
)
lag_changes = Gauge(
    "profilegate_destination_lag_changes",
    "Change-feed places after a destination's cursor, by destination.",
    ["destination"],
    multiprocess_mode="livemax",
)
deliveries = Counter(
    "profilegate_destination_deliveries",
    "Requests sent to destinations, by destination, outcome (delivered, failed, gone) and the "
    "receiver's status code (none: no answer: a timeout, a refused or dropped connection).",
    ["destination", "status", "code"],
)
dead_letters = Counter(
    "profilegate_destination_dead_letters",
    "Batches given up after their retry schedule was spent, by destination.",
    ["destination"],
)
paused = Counter(
    "profilegate_destination_pauses",
    "Destinations paused after failing too long, or disabled by a 410, by destination.",
    ["destination"],
)


class DestinationLabels:
    """Destination ids as label values, up to ``limit`` distinct ones."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, destination: str) -> str:
        if destination not in self._seen and len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(destination)
        return destination

    def known(self, destination: str) -> str:
        return destination if destination in self._seen else OTHER


names = DestinationLabels(MAX_DESTINATIONS)


class DestinationMetrics:
    """Counts deliveries into the series above (``service.destinations.deliverer.DeliveryObserver``)."""

    def attempted(self, destination: str, status: str, code: int | None) -> None:
        deliveries.labels(names(destination), status, NO_ANSWER if code is None else str(code)).inc()

    def dead_lettered(self, destination: str) -> None:
        dead_letters.labels(names(destination)).inc()

    def paused(self, destination: str) -> None:
        paused.labels(names(destination)).inc()

    def lag(self, destination: str, seconds: float, changes: int) -> None:
        lag_seconds.labels(names(destination)).set(seconds)
        lag_changes.labels(names(destination)).set(changes)

    def stopped(self, destination: str) -> None:
        """This process no longer delivers it: its gauges are someone else's to set."""
        name = names.known(destination)
        for gauge in (lag_seconds, lag_changes):
            with contextlib.suppress(KeyError):
                gauge.remove(name)
