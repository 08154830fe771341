"""How long each MongoDB command took, told to a callback (pymongo's command monitoring).

Storage knows nothing of how the durations are kept: the app passes a ``CommandTimer`` with
a callback to ``open_client``. The callback runs inline on every command reply, so it must
be cheap and must not raise.
"""

from collections.abc import Callable

from pymongo import monitoring

CommandObserver = Callable[[str, float], None]


class CommandTimer(monitoring.CommandListener):
    """Tells ``observe(command_name, seconds)`` for every command that got a reply or failed."""

    def __init__(self, observe: CommandObserver) -> None:
        self._observe = observe

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._observe(event.command_name, event.duration_micros / 1_000_000)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._observe(event.command_name, event.duration_micros / 1_000_000)
