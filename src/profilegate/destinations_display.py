"""What ``profilegate destinations`` shows: destinations as tab-separated rows or as labelled
lines, their delivery log and their dead letters."""

from collections.abc import Iterator
from datetime import datetime

from profilegate.domain.destinations import Destination
from profilegate.service.destinations.admin import Lag
from profilegate.storage.destinations import DeadLetter, DeliveryRecord

# The options of ``destinations create`` by the path an ``InvalidInput`` names.
OPTIONS = {
    "input.id": "--id",
    "input.name": "--name",
    "input.url": "--url",
    "input.consentPurpose": "--consent-purpose",
    "input.send": "--kind/--segment/--tiers/--extension",
    "input.send.segments": "--segment",
    "input.send.extensions": "--extension",
    "input.fields": "--field",
    "input.maxBatch": "--max-batch",
    "input.maxWaitSeconds": "--max-wait-seconds",
    "input.ratePerSecond": "--rate-per-second",
}


def option_of(field: str) -> str:
    """The option a refused value was given with (``input.send.segments[2]`` -> ``--segment``)."""
    return OPTIONS.get(field.split("[")[0], f"--{field.removeprefix('input.')}")


def destination_row(destination: Destination, lag: Lag) -> str:
    """id, state, lag seconds, changes waiting, URL, name."""
    return "\t".join(
        (
            destination.id,
            destination.state.value,
            f"{lag.seconds:.1f}",
            str(lag.changes),
            destination.spec.url,
            destination.spec.name,
        )
    )


def destination_lines(destination: Destination, lag: Lag, dead_letters: int) -> Iterator[str]:
    """A destination as ``label: value`` lines (never its secret)."""
    spec, selection = destination.spec, destination.spec.selection
    state = destination.state.value + (f" ({destination.state_reason})" if destination.state_reason else "")
    kinds = ", ".join(sorted(kind.value for kind in selection.kinds))
    shown = {
        "id": spec.id,
        "name": spec.name,
        "url": spec.url,
        "state": state,
        "kinds": kinds or "-",
        "segments": ", ".join(selection.segments) or "-",
        "tiers": "yes" if selection.tiers else "no",
        "extensions": ", ".join(selection.extensions) or "-",
        "consent purpose": spec.consent_purpose,
        "fields": ", ".join(spec.fields) or "-",
        "hashed identifiers": "yes" if spec.hash_identifiers else "no",
        "batching": f"{spec.delivery.max_batch} messages, {spec.delivery.max_wait_seconds:g} s at most",
        "rate": f"{spec.delivery.rate_per_second:g} requests/s at most",
        "lag": f"{lag.seconds:.1f} s, {lag.changes} changes",
        "dead letters": str(dead_letters),
        "created": _moment(destination.created_at),
        "updated": _moment(destination.updated_at),
    }
    if destination.secrets.previous_until is not None:
        shown["previous secret until"] = _moment(destination.secrets.previous_until)
    width = max(len(label) for label in shown) + 1
    for label, value in shown.items():
        yield f"{label + ':':<{width}} {value}"


def delivery_row(record: DeliveryRecord) -> str:
    """at, batch id, kind, status, attempt, status code, latency, messages, error."""
    code = "-" if record.status_code is None else str(record.status_code)
    return "\t".join(
        (
            _moment(record.at),
            record.batch_id,
            record.kind,
            record.status,
            str(record.attempt),
            code,
            f"{record.latency_ms} ms",
            str(record.count),
            record.error or "-",
        )
    )


def dead_letter_row(letter: DeadLetter) -> str:
    """at, batch id, kind, messages, attempts, last error."""
    return "\t".join(
        (
            _moment(letter.at),
            letter.batch_id,
            letter.kind,
            str(letter.count),
            str(letter.attempts),
            letter.error,
        )
    )


def _moment(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
