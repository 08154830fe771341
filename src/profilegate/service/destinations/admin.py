"""What an admin does with destinations: define, change, pause, resume, rotate, delete, and ask
for a resync, a resend or a replay (which the destination's deliverer then carries out)."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from profilegate.domain.destinations import (
    DeadLetterNotFound,
    Destination,
    DestinationNotFound,
    DestinationSpec,
    DestinationState,
    Secrets,
    check_spec,
)
from profilegate.domain.errors import InvalidInput
from profilegate.service.destinations.rules import DeliveryRules
from profilegate.service.destinations.sending import check_egress, new_secret
from profilegate.storage.destinations import DeadLetter, Request
from profilegate.storage.store import Repositories


@dataclass(frozen=True)
class WithSecret:
    """A destination and its new signing secret, shown only this once."""

    destination: Destination
    secret: str


@dataclass(frozen=True)
class Lag:
    """How far a destination is behind the feed: changes after its cursor, and the age in
    seconds of the oldest of them (0 when none waits)."""

    seconds: float
    changes: int


async def _checked(spec: DestinationSpec, rules: DeliveryRules) -> None:
    check_spec(spec, consent_purposes=rules.consent_purposes, development=rules.development)
    await check_egress(spec.url, rules)


async def create_destination(
    repos: Repositories, spec: DestinationSpec, rules: DeliveryRules, now: datetime
) -> WithSecret:
    """Define a destination, enabled, delivering the changes made from now on; a segment
    destination is first sent every current member (a resync)."""
    await _checked(spec, rules)
    secret = new_secret()
    destination = Destination(
        spec=spec,
        secrets=Secrets(secret),
        state=DestinationState.ENABLED,
        state_reason="",
        created_at=now,
        updated_at=now,
    )
    await repos.destinations.insert(destination, await repos.changes.head())
    await _queue_resync(repos, spec)
    return WithSecret(destination, secret)


async def update_destination(
    repos: Repositories, spec: DestinationSpec, rules: DeliveryRules, now: datetime
) -> Destination:
    """Change what a destination is sent and how; its cursor, state and secrets stay."""
    await _checked(spec, rules)
    updated = await repos.destinations.replace_spec(spec, now)
    if updated is None:
        raise DestinationNotFound(spec.id)
    return updated


async def get_destination(repos: Repositories, destination_id: str) -> Destination:
    found = await repos.destinations.get(destination_id)
    if found is None:
        raise DestinationNotFound(destination_id)
    return found


async def pause_destination(repos: Repositories, destination_id: str, now: datetime) -> Destination:
    """Stop delivering; the cursor stays where it is."""
    return await _set_state(repos, destination_id, DestinationState.PAUSED, "paused by an admin", now)


async def resume_destination(repos: Repositories, destination_id: str, now: datetime) -> Destination:
    """Deliver again from where it stopped (a batch in flight is sent at once)."""
    await get_destination(repos, destination_id)
    await repos.destinations.clear_failures(destination_id)
    return await _set_state(repos, destination_id, DestinationState.ENABLED, "", now)


async def _set_state(
    repos: Repositories, destination_id: str, state: DestinationState, reason: str, now: datetime
) -> Destination:
    updated = await repos.destinations.set_state(destination_id, state, reason, now)
    if updated is None:
        raise DestinationNotFound(destination_id)
    return updated


async def rotate_secret(
    repos: Repositories, destination_id: str, rules: DeliveryRules, now: datetime
) -> WithSecret:
    """A new signing secret; the previous one stays valid for ``rules.secret_grace`` (requests
    carry a signature for each meanwhile)."""
    found = await get_destination(repos, destination_id)
    secret = new_secret()
    secrets = Secrets(secret, found.secrets.current, now + rules.secret_grace)
    updated = await repos.destinations.set_secrets(destination_id, secrets, now)
    if updated is None:
        raise DestinationNotFound(destination_id)
    return WithSecret(updated, secret)


async def delete_destination(repos: Repositories, destination_id: str) -> None:
    if not await repos.destinations.delete(destination_id):
        raise DestinationNotFound(destination_id)


async def resync_destination(repos: Repositories, destination_id: str) -> Destination:
    """Send every current member of the destination's segments that grants its purpose as
    ``segment.entered`` again."""
    found = await get_destination(repos, destination_id)
    if not found.spec.selection.segments:
        raise InvalidInput("id", "the destination is sent no segments: there is nothing to resync")
    await _queue_resync(repos, found.spec)
    return found


async def _queue_resync(repos: Repositories, spec: DestinationSpec) -> None:
    for segment in spec.selection.segments:
        await repos.destinations.queue_request(
            spec.id, Request(id=_request_id(), kind="resync", segment=segment)
        )


async def replay_dead_letter(repos: Repositories, batch_id: str) -> DeadLetter:
    """Send a dead letter again: the same batch id and body, signed anew."""
    letter = await repos.destinations.dead_letter(batch_id)
    if letter is None:
        raise DeadLetterNotFound(batch_id)
    await repos.destinations.queue_request(
        letter.destination, Request(id=_request_id(), kind="replay", batch_id=batch_id)
    )
    return letter


async def resend_range(
    repos: Repositories, destination_id: str, since: datetime, until: datetime
) -> Destination:
    """Send the destination's changes dated ``since`` (inclusive) to ``until`` (exclusive) again,
    those it already acknowledged, in new batches under new ids."""
    if until <= since:
        raise InvalidInput("to", "must be after from")
    found = await get_destination(repos, destination_id)
    request = Request(id=_request_id(), kind="resend", since=since, until=until)
    await repos.destinations.queue_request(destination_id, request)
    return found


async def destination_lag(repos: Repositories, destination_id: str, now: datetime) -> Lag:
    state = await repos.destinations.state(destination_id)
    if state is None:
        raise DestinationNotFound(destination_id)
    head = await repos.changes.head()
    waiting = await repos.changes.read(state.cursor, limit=1, upto=head)
    seconds = (now - waiting[0].at).total_seconds() if waiting else 0.0
    return Lag(seconds=max(0.0, seconds), changes=max(0, head - state.cursor))


def _request_id() -> str:
    return uuid.uuid4().hex
