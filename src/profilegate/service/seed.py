"""Loading the demo data: extension definitions, profiles, the default tier policy and
segments from ``fixtures/``, and a few thousand events for those profiles, generated here.

The events are made by a seeded ``random.Random``, so every run makes the same ones, dated
back from the start of ``now``'s UTC day over the last ``DEMO_DAYS`` days (so every run, on
any day at any hour, gives the same figures over windows counted in days) and numbered
``seed-00000``, ...: a second run reports every one of them as a duplicate. They go through
tracking like any other batch, their shop day rollups written behind as the gateway writes them
(``service.shop_rollups``), once at the end.
"""

import dataclasses
import json
import random
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from profilegate.domain.extensions import ExtensionDefinition
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.keys import Principal, Role
from profilegate.domain.refs import ProfileRef
from profilegate.service.extensions import define_extension, set_extension
from profilegate.service.profiles import ConsentChange, ProfileChange, ProfileRules, upsert_profile
from profilegate.service.segments import SegmentCatalogue, SegmentInput, SegmentRules, save_segment
from profilegate.service.shop_rollups import HEARTBEAT_SHARE, SILENT_SECONDS, WriteBehindShopDays
from profilegate.service.tiers import ActivePolicy, TierRules, publish_policy
from profilegate.service.tracking import Status, TrackingRules, track
from profilegate.storage.store import Repositories

SEEDER = Principal(name="seed", role=Role.ADMIN)
DEMO_SEED = 20_261_120
DEMO_DAYS = 300
DAY = 86_400
CAMPAIGN_EVERY_DAYS = 28
GENERAL_CATEGORIES = ("fashion", "home", "electronics")
TOPICS = ("delivery", "returns", "invoice", "product question", "loyalty card")
COUPONS = ("WELCOME10", "SPRING10", "VIP10")
FREE_SHIPPING_FROM = Decimal(50)
SHIPPING = Decimal("4.95")
COUPON_DISCOUNT = Decimal(10)

type RawEvent = dict[str, Any]
type Ref = dict[str, Any]
type Line = tuple[str, str, Decimal, int]  # sku, category, price, quantity


@dataclass(frozen=True)
class Seeded:
    definitions: int
    profiles_created: int
    profiles_updated: int
    events_accepted: int
    events_duplicate: int
    events_rejected: int
    tier_policy_version: int | None  # the default policy, published and activated; None: one was active
    segments: int


@dataclass(frozen=True)
class SeedRules:
    tracking: TrackingRules
    tiers: TierRules
    segments: SegmentRules


async def seed(repos: Repositories, fixtures: Path, seed_rules: SeedRules, now: datetime) -> Seeded:
    """Load ``fixtures`` and the demo events; running it again changes nothing."""
    rules = seed_rules.tracking
    definitions = json.loads((fixtures / "extensions.json").read_text())
    for item in definitions:
        await define_extension(
            repos,
            ExtensionDefinition(
                name=item["name"],
                description=item["description"],
                partner_settable=item["partnerSettable"],
                shown_to_shopper=item.get("shownToShopper", False),
                default_lifetime_days=item.get("defaultLifetimeDays"),
            ),
        )
    profiles = json.loads((fixtures / "profiles.json").read_text())
    created = updated = 0
    for item in profiles:
        was_created = await _seed_profile(repos, item, rules.profiles, now)
        created += was_created
        updated += not was_created
    counts = await _track_demo_events(repos, demo_events(profiles, now), rules, now)
    return Seeded(
        len(definitions),
        created,
        updated,
        counts[Status.ACCEPTED],
        counts[Status.DUPLICATE],
        counts[Status.REJECTED],
        await _seed_tier_policy(repos, fixtures, seed_rules.tiers, now),
        await _seed_segments(repos, fixtures, seed_rules.segments, now),
    )


async def _track_demo_events(
    repos: Repositories, events: list[RawEvent], rules: TrackingRules, now: datetime
) -> dict[Status, int]:
    """Track the events in batches of ``rules.max_batch``; their shop day rollups are held and
    written once at the end, so a day document many batches touch is written once, not once a
    batch (a write of a day document costs the embedded store milliseconds). Until then this
    run's mark tells a gateway on the same store which events a crash would leave to roll up."""
    rollups = WriteBehindShopDays(
        repos.shop_days,
        repos.events,
        rules.shop.zone,
        lambda: datetime.now(UTC),
        writer=f"{SEEDER.name}-{uuid.uuid4().hex}",
        flush_seconds=SILENT_SECONDS / HEARTBEAT_SHARE,  # unused: no flushing task, only start and stop
    )
    behind = dataclasses.replace(repos, shop_days=rollups)
    counts = dict.fromkeys(Status, 0)
    await rollups.start()
    for start in range(0, len(events), rules.max_batch):
        result = await track(behind, events[start : start + rules.max_batch], rules, now)
        for status in Status:
            counts[status] += result.count(status)
    await rollups.stop()
    return counts


async def _seed_segments(repos: Repositories, fixtures: Path, rules: SegmentRules, now: datetime) -> int:
    """Save the demo segments (in file order: a segment a rule uses comes first)."""
    items = json.loads((fixtures / "segments.json").read_text())
    catalogue = SegmentCatalogue(repos, cache_seconds=0)
    for item in items:
        change = SegmentInput(item["key"], item["name"], item["rule"], item.get("maintainsExtension"))
        await save_segment(repos, catalogue, change, rules, by=SEEDER.name, now=now)
    await catalogue.settled()  # the members recorded before the command closes its client
    return len(items)


async def _seed_tier_policy(
    repos: Repositories, fixtures: Path, rules: TierRules, now: datetime
) -> int | None:
    """Publish and activate the default policy, unless a policy is active already."""
    if await repos.tier_policies.active_version() is not None:
        return None
    raw = json.loads((fixtures / "tier_policy.json").read_text())
    active = ActivePolicy(repos.tier_policies, cache_seconds=0)
    policy = await publish_policy(repos, active, raw, rules, by=SEEDER.name, now=now, activate=True)
    return policy.version


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


def demo_events(profiles: list[dict[str, Any]], now: datetime) -> list[RawEvent]:
    """Raw events for the fixture profiles; the same ones (bar ``at``) every run.

    Shopper by shopper, each one's oldest first: a batch then touches a few profiles, not all.
    """
    shop = _DemoShop(random.Random(DEMO_SEED))
    dated: list[tuple[int, RawEvent]] = []
    for item in profiles:
        start = len(shop.events)
        shop.shopper(_Shopper.of(item))
        dated += sorted(shop.events[start:], key=lambda pair: -pair[0])  # stable: ties keep their order
    base = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)  # the same figures all day
    return [
        {"id": f"seed-{number:05d}", "at": (base - timedelta(seconds=ago)).isoformat(), **event}
        for number, (ago, event) in enumerate(dated)
    ]


@dataclass(frozen=True)
class _Shopper:
    """What the generator needs to know of a fixture profile."""

    refs: dict[str, Ref]
    categories: tuple[str, ...]
    store: str | None
    newsletter: bool
    returner: bool
    channels: tuple[str, ...]

    @classmethod
    def of(cls, item: dict[str, Any]) -> "_Shopper":
        refs: dict[str, Ref] = {}
        for identity in item["identities"]:
            if identity["type"] == "ANONYMOUS_ID":
                refs.setdefault("ANONYMOUS_ID", {"anonymousId": identity["value"]})
            else:
                refs.setdefault(identity["type"], {"identity": dict(identity)})
        refs["PRIMARY"] = next(iter(refs.values()))
        traits = item.get("traits", {})
        consent = item.get("consents", {}).get("email_marketing", {})
        return cls(
            refs=refs,
            categories=tuple(traits.get("interests", ())) or GENERAL_CATEGORIES,
            store=traits.get("preferredStore"),
            newsletter="EMAIL" in refs and consent.get("granted") is True,
            returner=any(e["name"] == "frequent-returner" for e in item.get("extensions", [])),
            channels=("web", "app", "partner") if "partnerId" in traits else ("web", "web", "app"),
        )

    @property
    def known(self) -> bool:
        return set(self.refs) != {"ANONYMOUS_ID", "PRIMARY"}

    def ref(self, *preferred: str) -> Ref:
        return next((self.refs[kind] for kind in preferred if kind in self.refs), self.refs["PRIMARY"])


class _DemoShop:
    """Makes one shopper's history at a time; events are kept as (seconds ago, event)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.events: list[tuple[int, RawEvent]] = []

    def add(self, ago: int, kind: str, channel: str, ref: Ref, **properties: Any) -> None:
        self.events.append((ago, {"type": kind, "channel": channel, **ref, "properties": properties}))

    def shopper(self, shopper: _Shopper) -> None:
        sessions = self.rng.randint(5, 14) if shopper.known else self.rng.randint(2, 5)
        for _ in range(sessions):
            self.session(shopper, self.rng.randint(2 * 3600, DEMO_DAYS * DAY))
        if shopper.newsletter:
            self.emails(shopper)
        if shopper.store is not None:
            for _ in range(self.rng.randint(3, 7)):
                self.store_visit(shopper, shopper.store, self.rng.randint(DAY, DEMO_DAYS * DAY))
        if shopper.known and self.rng.random() < 0.35:
            for _ in range(self.rng.randint(1, 3)):
                ref = shopper.ref("CUSTOMER_ID", "PHONE")
                topic = self.rng.choice(TOPICS)
                self.add(
                    self.rng.randint(DAY, DEMO_DAYS * DAY),
                    "callcenter_contact",
                    "callcenter",
                    ref,
                    topic=topic,
                )

    def session(self, shopper: _Shopper, ago: int) -> None:
        channel = self.rng.choice(shopper.channels)
        logged_in = shopper.known and ("ANONYMOUS_ID" not in shopper.refs or self.rng.random() < 0.6)
        ref = shopper.ref("PRIMARY") if logged_in else shopper.ref("ANONYMOUS_ID")
        self.add(ago, "page_view", channel, ref, url="https://shop.example/", title="Home")
        viewed: list[tuple[str, str, Decimal]] = []
        for _ in range(self.rng.randint(1, 2)):
            ago -= self.rng.randint(20, 240)
            sku, category, price = self.product(shopper)
            self.add(
                ago,
                "product_view",
                channel,
                ref,
                sku=sku,
                category=category,
                price=str(price),
                currency="EUR",
            )
            viewed.append((sku, category, price))
            if self.rng.random() < 0.05:
                self.add(ago - 5, "custom", channel, ref, name="wishlist_added", sku=sku)
        if self.rng.random() >= 0.45:
            return
        cart: list[Line] = []
        for sku, category, price in self.rng.sample(viewed, self.rng.randint(1, len(viewed))):
            ago -= self.rng.randint(10, 120)
            quantity = self.rng.choice((1, 1, 1, 2))
            self.add(
                ago,
                "add_to_cart",
                channel,
                ref,
                sku=sku,
                category=category,
                price=str(price),
                quantity=quantity,
            )
            cart.append((sku, category, price, quantity))
        if self.rng.random() < 0.6:
            ago -= self.rng.randint(30, 300)
            total = sum((price * quantity for _, _, price, quantity in cart), Decimal(0))
            self.add(ago, "checkout_started", channel, ref, cartTotal=str(total), currency="EUR")
            if logged_in and self.rng.random() < 0.75:
                self.order(shopper, ago - self.rng.randint(60, 600), channel, ref, cart)

    def order(
        self,
        shopper: _Shopper,
        ago: int,
        channel: str,
        ref: Ref,
        lines: list[Line],
        store: str | None = None,
    ) -> None:
        order_id = f"SO-{len(self.events):06d}"
        subtotal = sum((price * quantity for _, _, price, quantity in lines), Decimal(0))
        shipping = Decimal(0) if store or subtotal >= FREE_SHIPPING_FROM else SHIPPING
        coupon = self.rng.choice(COUPONS) if subtotal > COUPON_DISCOUNT and self.rng.random() < 0.15 else None
        discount = COUPON_DISCOUNT if coupon else Decimal(0)
        items = [{"sku": s, "category": c, "price": str(p), "quantity": q} for s, c, p, q in lines]
        order: dict[str, Any] = {
            "orderId": order_id,
            "total": str(subtotal + shipping - discount),
            "currency": "EUR",
            "items": items,
            "shipping": str(shipping),
            "discount": str(discount),
        }
        if coupon:
            order["couponCode"] = coupon
        if store:
            order["storeId"] = store
        self.add(ago, "order_completed", channel, ref, **order)
        if coupon:
            self.add(ago - 1, "coupon_redeemed", channel, ref, code=coupon, orderId=order_id)
        self.aftermath(shopper, ago, channel, ref, order_id, lines, subtotal + shipping - discount)

    def aftermath(
        self,
        shopper: _Shopper,
        ago: int,
        channel: str,
        ref: Ref,
        order_id: str,
        lines: list[Line],
        total: Decimal,
    ) -> None:
        """Some orders are cancelled within the hour, some partly returned within three weeks (a
        line's worth, at most what the order came to after its coupon)."""
        chance = self.rng.random()
        cancel_at = ago - self.rng.randint(300, 3600)
        if chance < 0.06 and cancel_at > 60:
            self.add(cancel_at, "order_cancelled", channel, ref, orderId=order_id, reason="changed my mind")
            return
        return_at = ago - self.rng.randint(3, 21) * DAY
        if chance < (0.45 if shopper.returner else 0.15) and return_at > 3600:
            sku, _, price, quantity = self.rng.choice(lines)
            returned = {"sku": sku, "quantity": quantity}
            self.add(
                return_at,
                "order_returned",
                channel,
                ref,
                orderId=order_id,
                amount=str(min(price * quantity, total)),
                currency="EUR",
                items=[returned],
            )

    def emails(self, shopper: _Shopper) -> None:
        ref = shopper.ref("EMAIL")
        self.add(
            self.rng.randint(DEMO_DAYS - 20, DEMO_DAYS) * DAY,
            "newsletter_subscribed",
            "web",
            ref,
            listId="weekly",
        )
        for days in range(CAMPAIGN_EVERY_DAYS, DEMO_DAYS - 20, CAMPAIGN_EVERY_DAYS):
            campaign = f"weekly-{days // CAMPAIGN_EVERY_DAYS:02d}"
            sent = days * DAY + 9 * 3600
            if self.rng.random() < 0.5:
                opened = sent - self.rng.randint(600, 2 * DAY)
                self.add(opened, "email_opened", "email", ref, campaignId=campaign)
                if self.rng.random() < 0.4:
                    url = (
                        f"https://shop.example/{self.rng.choice(shopper.categories)}?utm_campaign={campaign}"
                    )
                    self.add(
                        opened - self.rng.randint(5, 300),
                        "email_clicked",
                        "email",
                        ref,
                        campaignId=campaign,
                        url=url,
                    )

    def store_visit(self, shopper: _Shopper, store: str, ago: int) -> None:
        ref = shopper.ref("LOYALTY_CARD", "CUSTOMER_ID")
        self.add(ago, "store_visit", "store", ref, storeId=store)
        if self.rng.random() < 0.65:
            lines: list[Line] = []
            for _ in range(self.rng.randint(1, 3)):
                sku, category, price = self.product(shopper)
                lines.append((sku, category, price, self.rng.choice((1, 1, 2))))
            self.order(shopper, ago - self.rng.randint(300, 2400), "store", ref, lines, store=store)

    def product(self, shopper: _Shopper) -> tuple[str, str, Decimal]:
        """A product of one of the shopper's categories; a SKU always has the same price."""
        category = self.rng.choice(shopper.categories)
        sku = f"{category[:4].upper()}-{self.rng.randint(1, 40):03d}"
        cents = 495 + zlib.crc32(sku.encode()) % 24_500
        return sku, category, Decimal(cents).scaleb(-2)
