"""Importing Shopify's order and customer exports (the files in fixtures/shopify)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from profilegate.domain.extensions import ExtensionDefinition
from profilegate.domain.profiles import Profile
from profilegate.service.extensions import define_extension
from profilegate.service.imports import CustomerOptions, ImportFormat, RejectedRow, WrongFormat, import_files
from profilegate.service.imports.csv_files import CUT_SHORT
from profilegate.service.imports.records import Events
from profilegate.service.imports.shopify_orders import read_orders
from profilegate.service.profiles import ProfileRules
from profilegate.storage.store import Repositories
from tests.service.imports.files import PROJECT_ROOT, SHOPIFY_FIXTURES, options
from tests.service.test_event_ids import assert_rebuild_changes_nothing
from tests.service.test_rebuild import all_profiles, profile_of

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ORDERS = SHOPIFY_FIXTURES / "orders_export.csv"
CUSTOMERS = SHOPIFY_FIXTURES / "customers_export.csv"
TAGS = {"employee": "employee", "vip": "vip", "Newsletter": "newsletter"}


async def import_orders(repos: Repositories, rules: ProfileRules, rejected: list[RejectedRow]) -> None:
    await import_files(
        repos, [ORDERS], options(rules, ImportFormat.SHOPIFY_ORDERS), NOW, on_rejected=rejected.append
    )


async def import_customers(
    repos: Repositories, rules: ProfileRules, rejected: list[RejectedRow] | None = None
) -> None:
    definitions = json.loads((PROJECT_ROOT / "fixtures" / "extensions.json").read_text())
    for item in definitions:
        await define_extension(repos, ExtensionDefinition(name=item["name"], description=item["description"]))
    customers = CustomerOptions(
        tag_extensions=TAGS, consent_purposes=(*rules.consent_purposes, "sms_marketing")
    )
    sms_rules = ProfileRules(rules.trait_limits, rules.max_identities, customers.consent_purposes)
    found = [] if rejected is None else rejected
    await import_files(
        repos,
        [CUSTOMERS],
        options(sms_rules, ImportFormat.SHOPIFY_CUSTOMERS, customers=customers),
        NOW,
        on_rejected=found.append,
    )


def by_phone(profiles: dict[str, Profile], phone: str) -> Profile:
    return next(p for p in profiles.values() if any(i.value == phone for i in p.identities))


async def test_orders_become_orders_returns_and_cancellations_with_their_coupon_codes(
    repos: Repositories, rules: ProfileRules
) -> None:
    await import_orders(repos, rules, [])

    anna = (await profile_of(repos, "anna.schulz@example.com")).aggregates
    # #1001 67.25, #1005 109.75 of which 24.90 refunded, #1017 93.95
    assert (anna.orders, anna.gross, anna.returned, anna.net) == (3, 27095, 2490, 24605)
    paul = (await profile_of(repos, "paul.wolf@example.com")).aggregates
    # #1006 cancelled (and refunded in full: counted once, as the cancellation), #1019 164.75
    assert (paul.orders, paul.cancelled_orders, paul.returned, paul.net) == (2, 1, 0, 16475)
    lea = (await profile_of(repos, "lea.wagner@example.com")).aggregates
    assert (lea.orders, lea.returned_orders, lea.net) == (1, 1, 0)  # #1003 refunded in full
    jonas = await profile_of(repos, "jonas.becker@example.com")
    logged = {event["_id"]: event for event in await repos.events.for_profiles([jonas.id])}
    assert logged["shopify-orders:#1002"]["properties"]["couponCode"] == "WELCOME10"
    leon = (await profile_of(repos, "leon.krueger@example.com")).aggregates
    # #1012 with taxes charged on top of its prices (114.57), #1022 from the app (24.85)
    assert (leon.orders, leon.net, leon.channels) == (2, 13942, {"web": 1, "app": 1})
    max_ = by_phone(await all_profiles(repos), "+4915112345604").aggregates
    assert (max_.orders, max_.channels) == (1, {"store": 1})  # a POS order known by phone only
    await assert_rebuild_changes_nothing(repos)


async def test_bad_order_rows_are_rejected_with_their_line_and_the_column_and_the_rest_imported(
    repos: Repositories, rules: ProfileRules
) -> None:
    rejected: list[RejectedRow] = []

    await import_orders(repos, rules, rejected)

    reasons = {row.line: row.reason for row in rejected}
    assert [row.line for row in rejected] == [14, 17, 20, 21, 23, 28]  # told in line order
    assert "Financial Status: 'pending'" in reasons[14]
    # The column as the file names it, not the event field it became.
    assert reasons[17] == (
        "order #1011: Currency: USD is not the base currency EUR and no rate is configured for it"
    )
    assert not any("properties" in reason for reason in reasons.values())
    assert "Paid at: '22.03.2026' is not a date" in reasons[20]
    assert "Lineitem quantity: -1 is not a positive quantity" in reasons[21]
    assert "Email: the row has neither an Email nor a Phone" in reasons[23]
    assert "Financial Status: 'voided'" in reasons[28]
    assert {row.path for row in rejected} == {str(ORDERS)}


async def test_importing_the_orders_again_changes_nothing(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    await import_orders(repos, rules, [])
    before = await all_profiles(repos)
    # A later export that overlaps: the same rows under another file, so no checkpoint applies.
    later = tmp_path / "orders_export_later.csv"
    later.write_text(ORDERS.read_text() + "\n")

    summary = await import_files(repos, [later], options(rules, ImportFormat.SHOPIFY_ORDERS), NOW)

    assert (summary.counts.accepted, summary.counts.duplicates) == (0, 21)
    assert await all_profiles(repos) == before


async def test_customers_become_profiles_with_identities_consents_traits_and_tag_extensions(
    repos: Repositories, rules: ProfileRules
) -> None:
    rejected: list[RejectedRow] = []

    await import_customers(repos, rules, rejected)

    anna = await profile_of(repos, "anna.schulz@example.com")
    assert {i.type.value: i.value for i in anna.identities} == {
        "email": "anna.schulz@example.com",
        "phone": "+4915112345601",
    }
    assert set(anna.active_extensions(NOW)) == {"employee", "newsletter"}
    assert anna.extensions["employee"].reason == "Shopify tag 'employee'"
    assert (anna.consents["email_marketing"].granted, anna.consents["sms_marketing"].granted) == (True, True)
    assert (anna.traits["city"], anna.traits["shopifyTotalOrders"]) == ("Berlin", "11")
    jonas = await profile_of(repos, "jonas.becker@example.com")
    assert (set(jonas.active_extensions(NOW)), jonas.consents["email_marketing"].granted) == ({"vip"}, False)
    max_ = by_phone(await all_profiles(repos), "+4915112345604")
    assert set(max_.active_extensions(NOW)) == {"vip"}  # "VIP, wholesale": tags match in any case
    emma = await profile_of(repos, "emma.zimmermann@example.com")
    assert set(emma.active_extensions(NOW)) == {"vip", "employee"}
    assert sorted((row.line, row.reason.split(":")[0]) for row in rejected) == [(12, "Email"), (13, "Email")]
    assert len(await all_profiles(repos)) == 10


async def test_unknown_columns_are_kept_as_traits_only_when_asked(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    path = tmp_path / "customers.csv"
    header = "First Name,Last Name,Email,Phone,Accepts Email Marketing,Tags,Loyalty Number"
    path.write_text(f"{header}\nAnna,Schmidt,anna@example.com,,yes,,L-77\n")
    kept = CustomerOptions(keep_unknown_columns=True)

    await import_files(repos, [path], options(rules, ImportFormat.SHOPIFY_CUSTOMERS), NOW)
    plain = (await profile_of(repos, "anna@example.com")).traits
    await import_files(repos, [path], options(rules, ImportFormat.SHOPIFY_CUSTOMERS, customers=kept), NOW)
    asked = (await profile_of(repos, "anna@example.com")).traits

    assert "loyaltyNumber" not in plain
    assert asked["loyaltyNumber"] == "L-77"


async def test_customers_and_their_orders_land_on_one_profile(
    repos: Repositories, rules: ProfileRules
) -> None:
    await import_customers(repos, rules)
    await import_orders(repos, rules, [])

    anna = await profile_of(repos, "anna.schulz@example.com")
    assert (anna.aggregates.orders, anna.traits["lastName"], "employee" in anna.extensions) == (
        3,
        "Schulz",
        True,
    )


@pytest.mark.parametrize(
    ("kind", "header", "missing"),
    [
        (
            ImportFormat.SHOPIFY_ORDERS,
            "Email,First Name,Last Name,Accepts Email Marketing,Phone,Tags",
            "Name",
        ),
        (ImportFormat.SHOPIFY_CUSTOMERS, "Name,Email,Financial Status,Paid at,Currency,Total", "First Name"),
    ],
)
async def test_a_csv_with_the_other_exports_header_is_refused_naming_the_expected_columns(
    repos: Repositories, rules: ProfileRules, tmp_path: Path, kind: ImportFormat, header: str, missing: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(f"{header}\n")

    with pytest.raises(WrongFormat, match=f"missing the columns .*{missing}.*; expected a header with"):
        await import_files(repos, [path], options(rules, kind), NOW)

    assert await all_profiles(repos) == {}


def test_a_lineitem_discount_becomes_the_lines_discount_and_the_sku_stays_as_written(tmp_path: Path) -> None:
    header = "Name,Email,Financial Status,Paid at,Currency,Total,Discount Amount,Shipping,"
    header += "Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku,Lineitem discount\n"
    rows = "#2001,ann@example.com,paid,2026-01-05 10:14:09 +0100,EUR,50.40,4.50,4.95,"
    rows += "2,Socks,12.50,SO-3PK,4.50\n"
    rows += "#2001,,,,,,,,1,Shirt,24.95,,0.00\n"
    path = tmp_path / "orders.csv"
    path.write_text(header + rows)

    [record] = read_orders(path)

    assert isinstance(record, Events)
    items = record.events[0]["properties"]["items"]
    assert items == [
        {"sku": "SO-3PK", "price": "12.50", "quantity": 2, "discount": "4.50"},
        {"sku": "Shirt", "price": "24.95", "quantity": 1},
    ]


async def test_a_file_cut_short_inside_a_quoted_field_has_that_row_rejected_never_imported(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    header, *rows = ORDERS.read_text().splitlines(keepends=True)
    cut = tmp_path / "orders_export.csv"
    # The first order whole, the second's first row cut short after an opening quote.
    cut.write_text(header + rows[0] + rows[1] + rows[2].split(",")[0] + ',"unterminated,quote\n')
    rejected: list[RejectedRow] = []

    summary = await import_files(
        repos, [cut], options(rules, ImportFormat.SHOPIFY_ORDERS), NOW, on_rejected=rejected.append
    )

    assert [(row.line, row.reason) for row in rejected] == [(4, f"order #1002: {CUT_SHORT}")]
    assert (summary.counts.rows, summary.counts.rows_rejected, summary.counts.accepted) == (3, 1, 1)
    logged = [event async for event in repos.events.scan()]
    assert [event["_id"] for event in logged] == ["shopify-orders:#1001"]


async def test_a_row_cut_short_after_an_orders_first_row_rejects_that_order_too(
    repos: Repositories, rules: ProfileRules, tmp_path: Path
) -> None:
    header, *rows = ORDERS.read_text().splitlines(keepends=True)
    cut = tmp_path / "orders_export.csv"
    cut.write_text(header + rows[0] + rows[1].split(",")[0] + ',"unterminated,quote\n')
    rejected: list[RejectedRow] = []

    summary = await import_files(
        repos, [cut], options(rules, ImportFormat.SHOPIFY_ORDERS), NOW, on_rejected=rejected.append
    )

    assert [row.line for row in rejected] == [2, 3]
    assert rejected[0].reason.startswith(
        "order #1001: not imported, since its next row (line 3) cannot be read"
    )
    assert (summary.counts.rows, summary.counts.rows_rejected, summary.counts.events) == (2, 2, 0)
