"""Shopify's customer export: one row per customer, made a profile change.

- ``Email`` and ``Phone`` become identities (at least one is needed);
- ``Accepts Email Marketing`` becomes the ``email_marketing`` consent, ``Accepts SMS
  Marketing`` the ``sms_marketing`` consent where that purpose is configured;
- names, the default address, ``Note``, ``Total Spent`` and ``Total Orders`` become traits
  (the totals as Shopify's figures only: aggregates come from the orders' events);
- ``Tags`` ("employee, vip") become extensions through the mapping given (tag -> extension);
  tags the mapping does not name are left alone;
- other columns become traits (named in camelCase) only when asked for.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profilegate.domain.errors import InvalidInput
from profilegate.domain.identities import Identity, IdentityType, normalise_identity
from profilegate.service.imports.csv_files import Row, UnreadableRow, check_header, csv_rows
from profilegate.service.imports.records import Customer, Record, Rejected
from profilegate.service.imports.shopify_values import BadValue, yes
from profilegate.service.profiles import ConsentChange, ProfileChange

REQUIRED = ("Email", "Phone", "First Name", "Last Name", "Accepts Email Marketing", "Tags")
CONSENT_SOURCE = "shopify-import"
CONSENTS = (("Accepts Email Marketing", "email_marketing"), ("Accepts SMS Marketing", "sms_marketing"))
TRAITS = {
    "First Name": "firstName",
    "Last Name": "lastName",
    "Customer ID": "shopifyCustomerId",
    "Default Address Company": "company",
    "Default Address City": "city",
    "Default Address Province Code": "province",
    "Default Address Country Code": "country",
    "Default Address Zip": "zip",
    "Note": "note",
    "Total Spent": "shopifyTotalSpent",
    "Total Orders": "shopifyTotalOrders",
}
# Read but kept nowhere: what Shopify knows only for itself, or addresses we keep in part.
IGNORED = frozenset(
    {
        "Email",
        "Phone",
        "Tags",
        "Tax Exempt",
        "Default Address Address1",
        "Default Address Address2",
        "Default Address Phone",
        *(column for column, _ in CONSENTS),
    }
)


@dataclass(frozen=True)
class CustomerOptions:
    tag_extensions: Mapping[str, str] = field(default_factory=dict)  # tag (any case) -> extension
    keep_unknown_columns: bool = False
    consent_purposes: tuple[str, ...] = ("email_marketing",)
    phone_region: str = "DE"


def check_customers(path: Path) -> None:
    check_header(path, REQUIRED)


def read_customers(path: Path, options: CustomerOptions) -> Iterator[Record]:
    tags = {tag.strip().lower(): extension for tag, extension in options.tag_extensions.items()}
    for read in csv_rows(path):
        if isinstance(read, UnreadableRow):
            yield Rejected(read.line, read.reason)
            continue
        line, row = read
        try:
            yield _customer(line, row, tags, options)
        except BadValue as error:
            yield Rejected(line, str(error))


def _customer(line: int, row: Row, tags: Mapping[str, str], options: CustomerOptions) -> Customer:
    identities = _identities(row, options.phone_region)
    change = ProfileChange(
        ref=None,
        identities=identities,
        traits=_traits(row, options.keep_unknown_columns),
        consents=tuple(
            ConsentChange(purpose, granted, CONSENT_SOURCE)
            for column, purpose in CONSENTS
            if purpose in options.consent_purposes and (granted := yes(row, column)) is not None
        ),
    )
    row_tags = [tag.strip() for tag in row.get("Tags", "").split(",") if tag.strip()]
    extensions = tuple((tags[tag.lower()], tag) for tag in row_tags if tag.lower() in tags)
    return Customer(line, change, extensions)


def _identities(row: Row, phone_region: str) -> tuple[Identity, ...]:
    found: list[Identity] = []
    for column, kind in (("Email", IdentityType.EMAIL), ("Phone", IdentityType.PHONE)):
        if row.get(column):
            try:
                found.append(normalise_identity(kind, row[column], field=column, phone_region=phone_region))
            except InvalidInput as error:
                raise BadValue(column, error.reason) from None
    if not found:
        raise BadValue("Email", "the row has neither an Email nor a Phone")
    return tuple(found)


def _traits(row: Row, keep_unknown: bool) -> dict[str, Any]:
    traits = {name: row[column] for column, name in TRAITS.items() if row.get(column)}
    if keep_unknown:
        for column, value in row.items():
            if value and column not in TRAITS and column not in IGNORED:
                traits[_camel(column)] = value
    return traits


def _camel(column: str) -> str:
    words = [word for word in re.split(r"[^0-9A-Za-z]+", column) if word]
    if not words:
        return "column"
    return words[0].lower() + "".join(word.capitalize() for word in words[1:])
