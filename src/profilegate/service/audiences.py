"""Audience exports: a segment's members who consented to a purpose, as rows for an e-mail
service provider or an ads platform's customer-match list.

Only members whose consent for the purpose is granted are exported; both conditions are one
query the database answers, streamed a batch at a time. E-mail addresses are exported as the
gateway keeps them (trimmed, lower-cased) and phone numbers in E.164 (``+4930123456``); with
``hashed`` each becomes the hex SHA-256 of exactly that text, as ads platforms expect of
customer-match uploads.
"""

import csv
import hashlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import orjson

from profilegate.domain.errors import InvalidInput
from profilegate.domain.identities import IdentityType
from profilegate.domain.profiles import Profile
from profilegate.domain.segments import Segment
from profilegate.service.segments import members_query
from profilegate.storage.store import Repositories

COLUMNS = ("profileId", "email", "phone")


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"

    @property
    def media_type(self) -> str:
        return "text/csv; charset=utf-8" if self is ExportFormat.CSV else "application/x-ndjson"


@dataclass(frozen=True)
class AudienceRequest:
    purpose: str
    format: ExportFormat = ExportFormat.CSV
    hashed: bool = False


def audience_query(
    segment: Segment, segments: list[Segment], purpose: str, now: datetime
) -> dict[str, object]:
    return {"$and": [members_query(segment, segments, now), {f"consents.{purpose}.granted": True}]}


async def audience_size(
    repos: Repositories, segment: Segment, segments: list[Segment], purpose: str, now: datetime
) -> int:
    return await repos.profiles.count_matching(audience_query(segment, segments, purpose, now))


async def export_audience(
    repos: Repositories,
    segment: Segment,
    segments: list[Segment],
    request: AudienceRequest,
    purposes: tuple[str, ...],
    now: datetime,
) -> AsyncIterator[bytes]:
    """The export, chunk by chunk: a header line for CSV, then one line per member."""
    if request.purpose not in purposes:
        raise InvalidInput("purpose", f"is not a consent purpose; known: {', '.join(purposes)}")
    if request.format is ExportFormat.CSV:
        yield _csv_line(COLUMNS)
    query = audience_query(segment, segments, request.purpose, now)
    async for profile in repos.profiles.matching(query):
        row = audience_row(profile, hashed=request.hashed)
        if request.format is ExportFormat.CSV:
            yield _csv_line(tuple(row[column] or "" for column in COLUMNS))
        else:
            yield orjson.dumps(row) + b"\n"


def audience_row(profile: Profile, *, hashed: bool) -> dict[str, str | None]:
    """The profile's first e-mail and phone, optionally as SHA-256 hex of the normalised value."""
    email = next((i.value for i in profile.identities if i.type is IdentityType.EMAIL), None)
    phone = next((i.value for i in profile.identities if i.type is IdentityType.PHONE), None)
    if hashed:
        email, phone = _sha256(email), _sha256(phone)
    return {"profileId": profile.id, "email": email, "phone": phone}


def _sha256(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def _csv_line(values: tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode()
