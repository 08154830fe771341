"""Export and erasure on the real store: nothing of the person is left, nothing recreates them,
a retry after a crash finishes the job, and the export holds what was tracked and set."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from profilegate.cli import app
from profilegate.domain.changes import ChangeKind
from profilegate.domain.erasure import PersonErased
from profilegate.domain.errors import InvalidInput, ProfileNotFound
from profilegate.domain.events import EventRules
from profilegate.domain.extensions import ExtensionDefinition
from profilegate.domain.identities import Identity, IdentityType, normalise_identity
from profilegate.domain.keys import Principal, Role
from profilegate.domain.money import Currencies
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.service.changes import ChangeRecorder
from profilegate.service.extensions import define_extension, set_extension
from profilegate.service.gdpr import erase_profile, export_profile
from profilegate.service.identify import IdentifyRules, identify
from profilegate.service.profiles import ConsentChange, ProfileChange, ProfileRules, upsert_profile
from profilegate.service.resolve import find_profile
from profilegate.service.segments import SegmentCatalogue
from profilegate.service.tiers import ActivePolicy
from profilegate.service.tracking import Status, TrackingRules, track
from profilegate.storage.documents import Database, Document
from profilegate.storage.layout import Layout
from profilegate.storage.store import Repositories, open_client, prepare

ADMIN = Principal(name="ops", role=Role.ADMIN)
ANN = "ann@example.com"
EMAIL = normalise_identity(IdentityType.EMAIL, ANN)
ANON = normalise_identity(IdentityType.ANONYMOUS_ID, "anon-ann-7")
BOB = normalise_identity(IdentityType.EMAIL, "bob@example.com")
# What may hold what after an erasure: tombstones hold hashes, the time and the reason; the
# audit log names profiles by id (never by identity); nothing else holds the person.
MAY_HOLD_THE_PROFILE_ID = ("audit",)


def order(event_id: str, at: datetime, identity: Identity, total: str = "40.00") -> dict[str, object]:
    return {
        "id": event_id,
        "type": "order_completed",
        "at": at.isoformat(),
        "channel": "web",
        "identity": {"type": identity.type.name, "value": identity.value},
        "properties": {
            "orderId": f"o-{event_id}",
            "total": total,
            "currency": "EUR",
            "items": [{"sku": "A1", "category": "shoes", "price": total}],
        },
    }


def view(event_id: str, at: datetime, anonymous: str = ANON.value) -> dict[str, object]:
    return {
        "id": event_id,
        "type": "product_view",
        "at": at.isoformat(),
        "channel": "web",
        "anonymousId": anonymous,
        "properties": {"sku": "A1", "category": "shoes"},
    }


@pytest.fixture
def feed(repos: Repositories) -> ChangeRecorder:
    return ChangeRecorder(
        repos.changes,
        SegmentCatalogue(repos, cache_seconds=0),
        ActivePolicy(repos.tier_policies, cache_seconds=0),
        partner_purpose="partner_sharing",
    )


@pytest.fixture
def tracking(rules: ProfileRules) -> TrackingRules:
    return TrackingRules(events=EventRules(), profiles=rules)


@pytest.fixture
def identifying(rules: ProfileRules) -> IdentifyRules:
    return IdentifyRules(profiles=rules, blocked_identities=frozenset(), retention_days=400)


async def known_person(
    repos: Repositories,
    rules: ProfileRules,
    tracking: TrackingRules,
    identifying: IdentifyRules,
    feed: ChangeRecorder,
    now: datetime,
) -> Profile:
    """Ann: an order by e-mail, views as an anonymous visitor, linked by identify (a merge),
    traits, a consent to partner sharing and an extension."""
    earlier = now - timedelta(days=2)
    await track(repos, [order("ann-o1", earlier, EMAIL)], tracking, earlier, observer=feed)
    await track(repos, [view("ann-v1", now - timedelta(hours=3))], tracking, now, observer=feed)
    await identify(repos, ANON, (EMAIL,), {"city": "Bonn"}, identifying, ADMIN, now, observer=feed)
    change = ProfileChange(
        ref=ProfileRef(identity=EMAIL),
        traits={"firstName": "Ann"},
        consents=(ConsentChange("partner_sharing", True, "account-settings"),),
    )
    await upsert_profile(repos, change, rules, now, observer=feed)
    await define_extension(repos, ExtensionDefinition(name="vip", description="Top customer"))
    await set_extension(
        repos, ProfileRef(identity=EMAIL), "vip", "big spender", None, ADMIN, now, observer=feed
    )
    profile = await find_profile(repos, ProfileRef(identity=EMAIL))
    assert profile is not None
    assert profile.merged_from
    return profile


async def holders(database: Database, needle: str) -> list[str]:
    """The collections with a document whose text holds ``needle``."""
    found = []
    for name in sorted(await database.list_collection_names()):
        async for document in database[name].find({}):
            if needle in repr(document):
                found.append(name)
                break
    return found


async def documents_of(database: Database, prefix: str) -> list[Document]:
    found: list[Document] = []
    for name in await database.list_collection_names():
        if name.startswith(prefix):
            found += [document async for document in database[name].find({})]
    return found


async def test_after_erasure_no_collection_holds_the_person(
    repos: Repositories,
    database: Database,
    rules: ProfileRules,
    tracking: TrackingRules,
    identifying: IdentifyRules,
    feed: ChangeRecorder,
    now: datetime,
) -> None:
    ann = await known_person(repos, rules, tracking, identifying, feed, now)
    loser = ann.merged_from[0]
    await track(repos, [order("bob-o1", now, BOB)], tracking, now, observer=feed)
    assert await holders(database, ANN)  # the test looks where the person is

    erased = await erase_profile(repos, ProfileRef(identity=EMAIL), "art. 17 request #12", now, observer=feed)

    assert (erased.profile_id, erased.already_erased, erased.profiles) == (ann.id, False, 2)
    assert (erased.identities, erased.events, erased.merges) == (2, 2, 1)
    assert erased.changes > 0
    for needle in (ANN, ANON.value, "Bonn", "firstName"):
        assert await holders(database, needle) == [], needle
    for profile_id in (ann.id, loser):
        assert all(
            name.startswith(MAY_HOLD_THE_PROFILE_ID) or name.startswith("changes")
            for name in await holders(database, profile_id)
        )
    assert [d["_id"] async for d in repos.events.scan()] == ["bob-o1"]
    assert await find_profile(repos, ProfileRef(identity=BOB)) is not None


async def test_the_feed_keeps_its_places_with_empty_payloads_and_tells_partners(
    repos: Repositories,
    rules: ProfileRules,
    tracking: TrackingRules,
    identifying: IdentifyRules,
    feed: ChangeRecorder,
    now: datetime,
) -> None:
    ann = await known_person(repos, rules, tracking, identifying, feed, now)
    before = await repos.changes.read(0, limit=1000)

    await erase_profile(repos, ProfileRef(id=ann.id), "asked by e-mail", now, observer=feed)

    after = await repos.changes.read(0, limit=1000)
    assert [c.seq for c in after[: len(before)]] == [c.seq for c in before]
    assert all(c.payload == {} for c in after if c.profile_id in (ann.id, *ann.merged_from))
    told = after[-1]
    assert (told.kind, told.profile_id, told.payload, told.shareable) == (
        ChangeKind.PROFILE_ERASED,
        ann.id,
        {},
        True,
    )


async def test_replayed_and_new_events_do_not_recreate_the_person(
    repos: Repositories,
    rules: ProfileRules,
    tracking: TrackingRules,
    identifying: IdentifyRules,
    feed: ChangeRecorder,
    now: datetime,
) -> None:
    ann = await known_person(repos, rules, tracking, identifying, feed, now)
    await erase_profile(repos, ProfileRef(identity=EMAIL), "request", now, observer=feed)
    by_id = {**order("ann-o3", now, EMAIL), "profileId": ann.id}
    del by_id["identity"]
    replay = [
        order("ann-o1", now - timedelta(days=2), EMAIL),
        view("ann-v1", now - timedelta(hours=3)),
        order("ann-o2", now, EMAIL),
        view("ann-v2", now),
        by_id,
    ]

    result = await track(repos, replay, tracking, now, observer=feed)

    assert [r.status for r in result.results] == [Status.REJECTED] * 5
    assert all("the person was erased" in (r.reason or "") for r in result.results)
    assert [d async for d in repos.events.scan()] == []
    assert await find_profile(repos, ProfileRef(identity=EMAIL)) is None
    assert await find_profile(repos, ProfileRef(identity=ANON)) is None


async def test_upsert_and_identify_refuse_an_erased_identity(
    repos: Repositories,
    rules: ProfileRules,
    tracking: TrackingRules,
    identifying: IdentifyRules,
    feed: ChangeRecorder,
    now: datetime,
) -> None:
    await known_person(repos, rules, tracking, identifying, feed, now)
    await erase_profile(repos, ProfileRef(identity=EMAIL), "request", now, observer=feed)
    await upsert_profile(repos, ProfileChange(ref=ProfileRef(identity=BOB)), rules, now)

    with pytest.raises(PersonErased) as by_ref:
        await upsert_profile(repos, ProfileChange(ref=ProfileRef(identity=EMAIL)), rules, now)
    with pytest.raises(PersonErased) as added:
        await upsert_profile(
            repos, ProfileChange(ref=ProfileRef(identity=BOB), identities=(ANON,)), rules, now
        )
    with pytest.raises(PersonErased):
        await identify(repos, None, (BOB, EMAIL), {}, identifying, ADMIN, now)

    assert (by_ref.value.field, added.value.field) == ("ref", "identities")
    bob = await find_profile(repos, ProfileRef(identity=BOB))
    assert bob is not None
    assert bob.identities == (BOB,)


async def test_erasing_again_answers_erased_and_writes_nothing(
    repos: Repositories,
    database: Database,
    rules: ProfileRules,
    tracking: TrackingRules,
    identifying: IdentifyRules,
    feed: ChangeRecorder,
    now: datetime,
) -> None:
    ann = await known_person(repos, rules, tracking, identifying, feed, now)
    first = await erase_profile(repos, ProfileRef(identity=EMAIL), "request", now, observer=feed)
    head = await repos.changes.head()

    later = now + timedelta(days=1)
    again = [
        await erase_profile(repos, ref, "again", later, observer=feed)
        for ref in (ProfileRef(identity=EMAIL), ProfileRef(id=ann.id), ProfileRef(identity=ANON))
    ]

    assert all(e.already_erased and e.erased_at == first.erased_at for e in again)
    assert [e.profile_id for e in again] == [None, ann.id, None]
    assert await repos.changes.head() == head
    with pytest.raises(ProfileNotFound):
        await erase_profile(repos, ProfileRef(identity=BOB), "never there", now, observer=feed)
    with pytest.raises(InvalidInput):
        await erase_profile(repos, ProfileRef(identity=EMAIL), "  ", now, observer=feed)


class Crash(Exception):
    pass


class CrashingFeed:
    """Dies where the erasure tells the feed: after the keys went, before the profiles do."""

    async def erased(self, profile: Profile, now: datetime) -> None:
        raise Crash


async def test_a_retry_after_a_crash_finishes_the_erasure_from_any_reference(
    repos: Repositories,
    database: Database,
    rules: ProfileRules,
    tracking: TrackingRules,
    identifying: IdentifyRules,
    feed: ChangeRecorder,
    now: datetime,
) -> None:
    ann = await known_person(repos, rules, tracking, identifying, feed, now)
    with pytest.raises(Crash):
        await erase_profile(repos, ProfileRef(identity=EMAIL), "request", now, observer=CrashingFeed())
    assert await repos.profiles.get(ann.id) is not None  # the keys are gone, the profile is not

    retried = await erase_profile(repos, ProfileRef(identity=EMAIL), "request", now, observer=feed)

    assert (retried.profile_id, retried.already_erased, retried.profiles) == (ann.id, False, 2)
    for needle in (ANN, ANON.value, "Bonn"):
        assert await holders(database, needle) == [], needle
    tombstones = await documents_of(database, "tombstones")
    assert tombstones
    assert all(set(d) == {"_id", "erasedAt", "reason"} for d in tombstones)


async def test_the_export_holds_what_was_tracked_and_set(
    repos: Repositories,
    rules: ProfileRules,
    tracking: TrackingRules,
    identifying: IdentifyRules,
    feed: ChangeRecorder,
    now: datetime,
) -> None:
    ann = await known_person(repos, rules, tracking, identifying, feed, now)

    exported = await export_profile(repos, ProfileRef(identity=ANON), now, Currencies())

    profile = exported["profile"]
    assert exported["profileId"] == ann.id
    assert {"type": "email", "value": ANN} in profile["identities"]
    assert profile["traits"] == {"city": "Bonn", "firstName": "Ann"}
    assert profile["consents"]["partner_sharing"]["granted"] is True
    assert profile["extensions"]["vip"]["reason"] == "big spender"
    assert [entry["action"] for entry in profile["extensionLog"]] == ["set"]
    assert (profile["aggregates"]["orders"], profile["aggregates"]["netSpend"]) == (1, "40.00")
    assert exported["mergedProfileIds"] == list(ann.merged_from)
    assert exported["mergedProfiles"][0]["mergedInto"] == ann.id
    assert sorted(e["id"] for e in exported["events"]) == ["ann-o1", "ann-v1"]
    assert [(m["loser"], m["winner"]) for m in exported["merges"]] == [(ann.merged_from[0], ann.id)]
    assert "PROFILE_CREATED" in {c["kind"] for c in exported["changes"]}
    assert isinstance(exported["exportedAt"], str)
    with pytest.raises(ProfileNotFound):
        await export_profile(repos, ProfileRef(identity=BOB), now, Currencies())


def test_export_profile_on_the_command_line_writes_the_document(
    store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rules: ProfileRules, now: datetime
) -> None:
    database = f"test_{uuid.uuid4().hex[:12]}"

    async def create() -> str:
        async with cli_database(store_uri, database) as repos:
            change = ProfileChange(ref=ProfileRef(identity=EMAIL), traits={"city": "Bonn"})
            return (await upsert_profile(repos, change, rules, now)).profile.id

    profile_id = asyncio.run(create())
    monkeypatch.setenv("MONGODB_URI", store_uri)
    monkeypatch.setenv("PROFILEGATE_DATABASE", database)
    output = tmp_path / "ann.json"
    try:
        written = CliRunner().invoke(
            app, ["export-profile", "--email", "Ann@Example.com", "--output", str(output)]
        )
        missing = CliRunner().invoke(app, ["export-profile", "--identity", "customerId:C-404"])
        both = CliRunner().invoke(app, ["export-profile", "--email", ANN, "--id", profile_id])
    finally:
        asyncio.run(drop(store_uri, database))

    assert written.exit_code == 0, written.output
    document = json.loads(output.read_text())
    assert (document["profileId"], document["profile"]["traits"]) == (profile_id, {"city": "Bonn"})
    assert (missing.exit_code, both.exit_code) == (2, 2)


@contextlib.asynccontextmanager
async def cli_database(store_uri: str, name: str) -> AsyncIterator[Repositories]:
    client = open_client(store_uri)
    try:
        yield await prepare(client[name], Layout(partitions=1))
    finally:
        await client.close()


async def drop(store_uri: str, name: str) -> None:
    client = open_client(store_uri)
    await client.drop_database(name)
    await client.close()
