"""The ``segments`` collection: one document per segment, ``_id`` is its key.

The rule is stored both as the text the admin wrote and as its syntax tree, which is read
back through the same validated union, so a stored rule is always a valid one.
"""

from pydantic import TypeAdapter

from profilegate.domain.segment_rules import Rule
from profilegate.domain.segments import Segment
from profilegate.storage.documents import Collection, Database, Document

_RULE: TypeAdapter[Rule] = TypeAdapter(Rule)


class SegmentRepository:
    def __init__(self, database: Database) -> None:
        self._segments: Collection = database["segments"]

    async def get(self, key: str) -> Segment | None:
        found = await self._segments.find_one({"_id": key})
        return None if found is None else segment_from_document(found)

    async def all(self) -> list[Segment]:
        return [segment_from_document(d) async for d in self._segments.find({}).sort("_id", 1)]

    async def save(self, segment: Segment) -> bool:
        """Create or replace; True when it was created."""
        result = await self._segments.replace_one(
            {"_id": segment.key}, segment_to_document(segment), upsert=True
        )
        return result.upserted_id is not None

    async def delete(self, key: str) -> bool:
        return (await self._segments.delete_one({"_id": key})).deleted_count == 1


def segment_to_document(segment: Segment) -> Document:
    return {
        "_id": segment.key,
        "name": segment.name,
        "ruleText": segment.rule_text,
        "rule": _RULE.dump_python(segment.rule, mode="json"),
        "maintainsExtension": segment.maintains_extension,
        "version": segment.version,
        "updatedAt": segment.updated_at,
        "updatedBy": segment.updated_by,
    }


def segment_from_document(document: Document) -> Segment:
    return Segment(
        key=document["_id"],
        name=document["name"],
        rule_text=document["ruleText"],
        rule=_RULE.validate_python(document["rule"]),
        maintains_extension=document.get("maintainsExtension"),
        version=document.get("version", 1),
        updated_at=document["updatedAt"],
        updated_by=document["updatedBy"],
    )
