"""Import files written for the tests, and what their events imply for each customer."""

from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from profilegate.domain.events import EventRules
from profilegate.service.imports import ImportFormat, ImportOptions
from profilegate.service.profiles import ProfileRules
from profilegate.service.tracking import TrackingRules

RETENTION = 400
PROJECT_ROOT = Path(__file__).resolve().parents[3]
SHOPIFY_FIXTURES = PROJECT_ROOT / "fixtures" / "shopify"


def write_ndjson(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    return path


def options(rules: ProfileRules, kind: ImportFormat = ImportFormat.NDJSON, **changes: Any) -> ImportOptions:
    tracking = TrackingRules(events=EventRules(), profiles=rules, retention_days=RETENTION)
    return ImportOptions(kind, tracking, **changes)


def implied_metrics(events: list[dict[str, Any]]) -> dict[str, tuple[int, Decimal]]:
    """Per e-mail, the orders and the net spend (orders - returns - cancelled orders) the events imply."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(dict)
    cancelled: dict[str, set[str]] = defaultdict(set)
    returned: dict[str, Decimal] = defaultdict(Decimal)
    for event in events:
        email, properties = event["identity"]["value"], event["properties"]
        match event["type"]:
            case "order_completed":
                totals[email][properties["orderId"]] = Decimal(properties["total"])
            case "order_cancelled":
                cancelled[email].add(properties["orderId"])
            case "order_returned":
                returned[email] += Decimal(properties["amount"])
            case _:
                totals.setdefault(email, {})
    return {
        email: (
            len(orders),
            sum(orders.values(), Decimal(0))
            - returned[email]
            - sum((total for order, total in orders.items() if order in cancelled[email]), Decimal(0)),
        )
        for email, orders in totals.items()
    }
