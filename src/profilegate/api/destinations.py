"""Destinations over GraphQL (admins): define them, watch their delivery, replay and resend."""

from datetime import datetime
from typing import Annotated

import strawberry

from profilegate.api import enums  # noqa: F401  (registers the domain enums with the schema first)
from profilegate.api.context import Info
from profilegate.api.errors import Error, InvalidInputError, bad_input, error_result
from profilegate.api.permissions import ADMIN
from profilegate.domain.changes import ChangeKind
from profilegate.domain.destinations import (
    DeadLetterNotFound,
    Delivery,
    Destination,
    DestinationExists,
    DestinationNotFound,
    DestinationSpec,
    DestinationState,
    Selection,
)
from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.service.destinations import admin
from profilegate.storage.destinations import DeadLetter, DeliveryRecord

DEFAULT_PAGE = 20
MAX_PAGE = 200

strawberry.enum(
    DestinationState,
    name="DestinationState",
    description="ENABLED: delivering. PAUSED: by an admin or after failing too long; resumes where it "
    "stopped. DISABLED: the receiver answered 410 Gone; resume to deliver again.",
)


@strawberry.type(description="No destination has this id.")
class DestinationNotFoundError(Error):
    id: str


@strawberry.type(description="A destination with this id exists already.")
class DestinationExistsError(Error):
    id: str


@strawberry.type(description="No dead letter has this batch id.")
class DeadLetterNotFoundError(Error):
    batch_id: str


def _error(error: DomainError) -> Error:
    match error:
        case DestinationNotFound():
            return DestinationNotFoundError(message=error.message, id=error.destination_id)
        case DestinationExists():
            return DestinationExistsError(message=error.message, id=error.destination_id)
        case DeadLetterNotFound():
            return DeadLetterNotFoundError(message=error.message, batch_id=error.batch_id)
    return error_result(error)


@strawberry.input(description="What a destination is sent; at least one of them.")
class DestinationSendInput:
    kinds: list[ChangeKind] = strawberry.field(
        default_factory=list, description="Every change of these kinds."
    )
    segments: list[str] = strawberry.field(
        default_factory=list,
        description="Segment keys: `segment.entered` and `segment.left` (audience deltas).",
    )
    tiers: bool = strawberry.field(default=False, description="Tier changes (`tier.changed`).")
    extensions: list[str] = strawberry.field(
        default_factory=list, description="Extension names: `extension.set` and `extension.removed`."
    )


@strawberry.input
class DestinationInput:
    id: str = strawberry.field(description="The destination's key: 1-63 of a-z, 0-9, - and _.")
    name: str
    url: str = strawberry.field(
        description="https:// (http:// only in development); must not resolve to a loopback, private or "
        "link-local address unless the gateway allows it."
    )
    send: DestinationSendInput
    consent_purpose: str = strawberry.field(
        description="A profile is sent only while it grants this purpose; withdrawing it sends a removal."
    )
    fields: list[str] = strawberry.field(
        default_factory=list,
        description="Personal fields each message carries: identities, traits, traits.<key>; none if empty.",
    )
    hash_identifiers: bool = strawberry.field(
        default=False,
        description="Send `hashedIdentifiers`: SHA-256 of the normalised e-mail and E.164 phone.",
    )
    max_batch: int = strawberry.field(default=100, description="Messages per request, 1-500.")
    max_wait_seconds: float = strawberry.field(
        default=1.0, description="Longest a batch waits for more, 0-300."
    )
    rate_per_second: float = strawberry.field(default=10.0, description="Requests per second at most.")

    def to_domain(self) -> DestinationSpec:
        return DestinationSpec(
            id=self.id,
            name=self.name,
            url=self.url,
            selection=Selection(
                kinds=frozenset(self.send.kinds),
                segments=tuple(self.send.segments),
                tiers=self.send.tiers,
                extensions=tuple(self.send.extensions),
            ),
            consent_purpose=self.consent_purpose,
            fields=tuple(self.fields),
            hash_identifiers=self.hash_identifiers,
            delivery=Delivery(self.max_batch, self.max_wait_seconds, self.rate_per_second),
        )


@strawberry.type(name="DestinationSend")
class DestinationSendType:
    kinds: list[ChangeKind]
    segments: list[str]
    tiers: bool
    extensions: list[str]


@strawberry.type(name="DestinationLag")
class DestinationLagType:
    seconds: float = strawberry.field(description="Age of the oldest change not yet acknowledged (0: none).")
    changes: int = strawberry.field(description="Feed places after the destination's cursor.")


@strawberry.type(name="DestinationDelivery", description="One request sent, and how it ended.")
class DeliveryType:
    cursor: str
    batch_id: str
    kind: str = strawberry.field(description="feed, resend, resync or replay.")
    at: datetime
    status: str = strawberry.field(description="delivered, failed, gone (410) or dead_lettered.")
    attempt: int
    latency_ms: int
    status_code: int | None = strawberry.field(description="The receiver's HTTP status; null: no answer.")
    count: int = strawberry.field(description="Messages in the batch.")
    error: str

    @classmethod
    def from_domain(cls, record: DeliveryRecord) -> "DeliveryType":
        return cls(
            cursor=record.cursor,
            batch_id=record.batch_id,
            kind=record.kind,
            at=record.at,
            status=record.status,
            attempt=record.attempt,
            latency_ms=record.latency_ms,
            status_code=record.status_code,
            count=record.count,
            error=record.error,
        )


@strawberry.type(name="DeadLetter", description="A batch whose retry schedule was spent.")
class DeadLetterType:
    cursor: str
    batch_id: str
    destination: str
    kind: str
    body: str = strawberry.field(description="The batch as it was sent (JSON); a replay sends it again.")
    count: int
    attempts: int
    error: str
    at: datetime

    @classmethod
    def from_domain(cls, letter: DeadLetter) -> "DeadLetterType":
        return cls(
            cursor=letter.at.isoformat(),
            batch_id=letter.batch_id,
            destination=letter.destination,
            kind=letter.kind,
            body=letter.body,
            count=letter.count,
            attempts=letter.attempts,
            error=letter.error,
            at=letter.at,
        )


@strawberry.type
class DestinationDeliveryPage:
    deliveries: list[DeliveryType]
    next_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null at the end."
    )


@strawberry.type
class DeadLetterPage:
    dead_letters: list[DeadLetterType]
    next_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null at the end."
    )


def _page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise bad_input(InvalidInput("first", f"must be between 1 and {MAX_PAGE}"))
    return first


@strawberry.type(name="Destination")
class DestinationType:
    id: str
    name: str
    url: str
    send: DestinationSendType
    consent_purpose: str
    fields: list[str]
    hash_identifiers: bool
    max_batch: int
    max_wait_seconds: float
    rate_per_second: float
    state: DestinationState
    state_reason: str = strawberry.field(description="Why it is paused or disabled; empty when enabled.")
    previous_secret_valid_until: datetime | None = strawberry.field(
        description="After a rotation: until when requests are signed with the previous secret too."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, destination: Destination) -> "DestinationType":
        spec = destination.spec
        return cls(
            id=spec.id,
            name=spec.name,
            url=spec.url,
            send=DestinationSendType(
                kinds=sorted(spec.selection.kinds),
                segments=list(spec.selection.segments),
                tiers=spec.selection.tiers,
                extensions=list(spec.selection.extensions),
            ),
            consent_purpose=spec.consent_purpose,
            fields=list(spec.fields),
            hash_identifiers=spec.hash_identifiers,
            max_batch=spec.delivery.max_batch,
            max_wait_seconds=spec.delivery.max_wait_seconds,
            rate_per_second=spec.delivery.rate_per_second,
            state=destination.state,
            state_reason=destination.state_reason,
            previous_secret_valid_until=destination.secrets.previous_until,
            created_at=destination.created_at,
            updated_at=destination.updated_at,
        )

    @strawberry.field(description="How far delivery is behind the change feed.")
    async def lag(self, info: Info) -> DestinationLagType:
        lag = await admin.destination_lag(info.context.repos, self.id, info.context.now)
        return DestinationLagType(seconds=lag.seconds, changes=lag.changes)

    @strawberry.field(description="The delivery log, newest first (`first` at most 200).")
    async def deliveries(
        self, info: Info, first: int = DEFAULT_PAGE, after: str | None = None
    ) -> DestinationDeliveryPage:
        size = _page_size(first)
        before = None
        if after is not None:
            if not after.isdigit():
                raise bad_input(InvalidInput("after", "is not a cursor of this log"))
            before = int(after)
        found = await info.context.repos.destinations.deliveries(self.id, size + 1, before)
        page = found[:size]
        return DestinationDeliveryPage(
            deliveries=[DeliveryType.from_domain(record) for record in page],
            next_cursor=page[-1].cursor if len(found) > size else None,
        )

    @strawberry.field(description="Batches given up after the retry schedule, newest first.")
    async def dead_letters(
        self, info: Info, first: int = DEFAULT_PAGE, after: str | None = None
    ) -> DeadLetterPage:
        size = _page_size(first)
        before = None
        if after is not None:
            try:
                before = datetime.fromisoformat(after)
            except ValueError as error:
                raise bad_input(InvalidInput("after", "is not a cursor of this list")) from error
        found = await info.context.repos.destinations.dead_letters(self.id, size + 1, before)
        page = [DeadLetterType.from_domain(letter) for letter in found[:size]]
        return DeadLetterPage(dead_letters=page, next_cursor=page[-1].cursor if len(found) > size else None)


@strawberry.type
class DestinationCreated:
    destination: DestinationType
    secret: str = strawberry.field(
        description="The signing secret (whsec_...), shown only now: receivers verify signatures with it."
    )


@strawberry.type
class DestinationSecretRotated:
    destination: DestinationType
    secret: str = strawberry.field(description="The new signing secret, shown only now.")


@strawberry.type
class DestinationChanged:
    destination: DestinationType


@strawberry.type
class DestinationDeleted:
    id: str


@strawberry.type(description="The deliverer sends these again shortly.")
class DestinationSendQueued:
    destination: DestinationType
    new_batch_ids: bool = strawberry.field(
        description="True: a resend goes out under new batch ids (receivers see the changes twice, under "
        "two ids, by request); false: a resync's entries also go out under new ids, a replay under its own."
    )


@strawberry.type
class DeadLetterReplayQueued:
    dead_letter: DeadLetterType


CreateDestinationResult = Annotated[
    DestinationCreated | InvalidInputError | DestinationExistsError,
    strawberry.union("CreateDestinationResult"),
]
UpdateDestinationResult = Annotated[
    DestinationChanged | InvalidInputError | DestinationNotFoundError,
    strawberry.union("UpdateDestinationResult"),
]
DestinationStateResult = Annotated[
    DestinationChanged | DestinationNotFoundError, strawberry.union("DestinationStateResult")
]
RotateDestinationSecretResult = Annotated[
    DestinationSecretRotated | DestinationNotFoundError, strawberry.union("RotateDestinationSecretResult")
]
DeleteDestinationResult = Annotated[
    DestinationDeleted | DestinationNotFoundError, strawberry.union("DeleteDestinationResult")
]
DestinationSendResult = Annotated[
    DestinationSendQueued | InvalidInputError | DestinationNotFoundError,
    strawberry.union("DestinationSendResult"),
]
ReplayDeadLetterResult = Annotated[
    DeadLetterReplayQueued | DeadLetterNotFoundError, strawberry.union("ReplayDeadLetterResult")
]


@strawberry.type
class DestinationQueries:
    @strawberry.field(permission_classes=[ADMIN], description="Every destination, by id.")
    async def destinations(self, info: Info) -> list[DestinationType]:
        return [DestinationType.from_domain(found) for found in await info.context.repos.destinations.all()]

    @strawberry.field(permission_classes=[ADMIN], description="One destination; null when no such id.")
    async def destination(self, info: Info, id: str) -> DestinationType | None:
        found = await info.context.repos.destinations.get(id)
        return None if found is None else DestinationType.from_domain(found)


@strawberry.type
class DestinationMutations:
    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Define a destination, enabled; a segment destination is first sent its current members.",
    )
    async def create_destination(self, info: Info, input: DestinationInput) -> CreateDestinationResult:
        context = info.context
        try:
            made = await admin.create_destination(
                context.repos, input.to_domain(), context.deliveries.rules, context.now
            )
        except DomainError as error:
            return _error(error)  # type: ignore[return-value]  # one of the union's members
        context.deliveries.wake()
        return DestinationCreated(
            destination=DestinationType.from_domain(made.destination), secret=made.secret
        )

    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Change what a destination is sent and how (`input.id` names it); its cursor stays.",
    )
    async def update_destination(self, info: Info, input: DestinationInput) -> UpdateDestinationResult:
        context = info.context
        try:
            updated = await admin.update_destination(
                context.repos, input.to_domain(), context.deliveries.rules, context.now
            )
        except DomainError as error:
            return _error(error)  # type: ignore[return-value]  # one of the union's members
        context.deliveries.wake()
        return DestinationChanged(destination=DestinationType.from_domain(updated))

    @strawberry.mutation(permission_classes=[ADMIN], description="Stop delivering; the cursor stays.")
    async def pause_destination(self, info: Info, id: str) -> DestinationStateResult:
        try:
            paused = await admin.pause_destination(info.context.repos, id, info.context.now)
        except DomainError as error:
            return _error(error)  # type: ignore[return-value]  # one of the union's members
        info.context.deliveries.wake()
        return DestinationChanged(destination=DestinationType.from_domain(paused))

    @strawberry.mutation(
        permission_classes=[ADMIN], description="Deliver again (paused or disabled), from where it stopped."
    )
    async def resume_destination(self, info: Info, id: str) -> DestinationStateResult:
        try:
            resumed = await admin.resume_destination(info.context.repos, id, info.context.now)
        except DomainError as error:
            return _error(error)  # type: ignore[return-value]  # one of the union's members
        info.context.deliveries.wake()
        return DestinationChanged(destination=DestinationType.from_domain(resumed))

    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="A new signing secret, shown once; the previous one signs too during the grace period.",
    )
    async def rotate_destination_secret(self, info: Info, id: str) -> RotateDestinationSecretResult:
        context = info.context
        try:
            rotated = await admin.rotate_secret(context.repos, id, context.deliveries.rules, context.now)
        except DomainError as error:
            return _error(error)  # type: ignore[return-value]  # one of the union's members
        context.deliveries.wake()
        return DestinationSecretRotated(
            destination=DestinationType.from_domain(rotated.destination), secret=rotated.secret
        )

    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Delete a destination with its cursor, dead letters and what it was sent.",
    )
    async def delete_destination(self, info: Info, id: str) -> DeleteDestinationResult:
        try:
            await admin.delete_destination(info.context.repos, id)
        except DomainError as error:
            return _error(error)  # type: ignore[return-value]  # one of the union's members
        info.context.deliveries.wake()
        return DestinationDeleted(id=id)

    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Send every current member of the destination's segments that grants its purpose as "
        "`segment.entered` again.",
    )
    async def resync_destination(self, info: Info, id: str) -> DestinationSendResult:
        try:
            found = await admin.resync_destination(info.context.repos, id)
        except DomainError as error:
            return _error(error)  # type: ignore[return-value]  # one of the union's members
        info.context.deliveries.wake(id)
        return DestinationSendQueued(destination=DestinationType.from_domain(found), new_batch_ids=True)

    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Send a dead letter again: the same batch id and body, signed with a fresh timestamp.",
    )
    async def replay_dead_letter(self, info: Info, batch_id: str) -> ReplayDeadLetterResult:
        try:
            letter = await admin.replay_dead_letter(info.context.repos, batch_id)
        except DomainError as error:
            return _error(error)  # type: ignore[return-value]  # one of the union's members
        info.context.deliveries.wake(letter.destination)
        return DeadLetterReplayQueued(dead_letter=DeadLetterType.from_domain(letter))

    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Send the changes dated `from` (inclusive) to `to` (exclusive) that the destination "
        "already acknowledged again, in new batches under new ids.",
    )
    async def resend_destination_range(
        self,
        info: Info,
        id: str,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> DestinationSendResult:
        try:
            found = await admin.resend_range(info.context.repos, id, from_, to)
        except DomainError as error:
            return _error(error)  # type: ignore[return-value]  # one of the union's members
        info.context.deliveries.wake(id)
        return DestinationSendQueued(destination=DestinationType.from_domain(found), new_batch_ids=True)
