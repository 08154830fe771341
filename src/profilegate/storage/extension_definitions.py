"""The ``extension_definitions`` collection: the catalogue, ``_id`` is the extension's name."""

from enum import StrEnum

from profilegate.domain.extensions import ExtensionDefinition
from profilegate.storage.documents import Collection, Document


class DefineOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class ExtensionDefinitionRepository:
    def __init__(self, collection: Collection) -> None:
        self._definitions = collection

    async def get(self, name: str) -> ExtensionDefinition | None:
        found = await self._definitions.find_one({"_id": name})
        return None if found is None else _from_document(found)

    async def all(self) -> list[ExtensionDefinition]:
        cursor = self._definitions.find({}).sort("_id", 1)
        return [_from_document(document) async for document in cursor]

    async def shown_to_shoppers(self) -> frozenset[str]:
        """The names of the extensions a storefront key may show to the shopper they are about."""
        cursor = self._definitions.find({"shownToShopper": True}, {"_id": 1})
        return frozenset([document["_id"] async for document in cursor])

    async def save(self, definition: ExtensionDefinition) -> DefineOutcome:
        """Create or replace a definition; an identical one changes nothing."""
        document = _to_document(definition)
        result = await self._definitions.update_one({"_id": definition.name}, {"$set": document}, upsert=True)
        if result.upserted_id is not None:
            return DefineOutcome.CREATED
        return DefineOutcome.UPDATED if result.modified_count else DefineOutcome.UNCHANGED


def _to_document(definition: ExtensionDefinition) -> Document:
    return {
        "description": definition.description,
        "partnerSettable": definition.partner_settable,
        "shownToShopper": definition.shown_to_shopper,
        "defaultLifetimeDays": definition.default_lifetime_days,
    }


def _from_document(document: Document) -> ExtensionDefinition:
    return ExtensionDefinition(
        name=document["_id"],
        description=document["description"],
        partner_settable=document["partnerSettable"],
        shown_to_shopper=bool(document.get("shownToShopper", False)),
        default_lifetime_days=document.get("defaultLifetimeDays"),
    )
