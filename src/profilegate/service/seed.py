"""Loading the demo data in ``fixtures/``: extension definitions and realistic profiles."""

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from profilegate.domain.extensions import ExtensionDefinition
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.keys import Principal, Role
from profilegate.domain.refs import ProfileRef
from profilegate.service.extensions import define_extension, set_extension
from profilegate.service.profiles import ConsentChange, ProfileChange, ProfileRules, upsert_profile
from profilegate.storage.store import Repositories

SEEDER = Principal(name="seed", role=Role.ADMIN)


@dataclass(frozen=True)
class Seeded:
    definitions: int
    profiles_created: int
    profiles_updated: int


async def seed(repos: Repositories, fixtures: Path, rules: ProfileRules, now: datetime) -> Seeded:
    """Load ``fixtures``; running it again changes nothing."""
    definitions = json.loads((fixtures / "extensions.json").read_text())
    for item in definitions:
        await define_extension(
            repos,
            ExtensionDefinition(
                name=item["name"],
                description=item["description"],
                partner_settable=item["partnerSettable"],
                default_lifetime_days=item.get("defaultLifetimeDays"),
            ),
        )
    created = updated = 0
    for item in json.loads((fixtures / "profiles.json").read_text()):
        was_created = await _seed_profile(repos, item, rules, now)
        created += was_created
        updated += not was_created
    return Seeded(len(definitions), created, updated)


async def _seed_profile(
    repos: Repositories, item: dict[str, Any], rules: ProfileRules, now: datetime
) -> bool:
    identities = tuple(
        normalise_identity(IdentityType[i["type"]], i["value"], phone_region="DE") for i in item["identities"]
    )
    ref = ProfileRef(identity=identities[0])
    change = ProfileChange(
        ref=ref,
        identities=identities,
        traits=item.get("traits", {}),
        consents=tuple(
            ConsentChange(purpose, answer["granted"], answer["source"])
            for purpose, answer in item.get("consents", {}).items()
        ),
    )
    upserted = await upsert_profile(repos, change, rules, now)
    for extension in item.get("extensions", []):
        await set_extension(repos, ref, extension["name"], extension["reason"], None, SEEDER, now)
    return upserted.created
