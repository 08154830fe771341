"""The segment rule language's syntax tree: a validated, recursive discriminated union.

A rule is parsed from text (``segment_parser``) into these nodes; two interpreters read them:
the pure predicate over one profile (``segment_predicate``) and the compiler to a MongoDB
aggregation expression (``storage.segment_query``). Every node states its meaning here, and
both interpreters follow it exactly:

- A comparison with a value that is absent (a missing trait, an average order value before
  any kept order, days since the last order before any order) is false, whatever the
  operator, ``!=`` included; ``not`` of it is true.
- Trait comparisons are type-strict: a number compares with numbers (int or float, never a
  boolean), a string with strings (code-point order), a boolean only with ``=`` and ``!=``.
  A comparison across types is false.
- Windows are ``last N days``: the N UTC days ending today (today and N - 1 days before),
  read from the profile's daily buckets; without a window a metric is lifetime.
- Money is integer minor units of the base currency; rule text writes it as a decimal.
"""

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from profilegate.domain.events import Channel, EventType
from profilegate.domain.identities import IdentityType

MAX_RULE_DEPTH = 16
MAX_LIST_VALUES = 100
MAX_TRAIT_PATH = 5
MAX_STRING_LENGTH = 500


class Comparison(StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class Metric(StrEnum):
    """What a ``MetricTest`` measures, and in which unit its ``value`` is."""

    ORDERS = "orders"  # orders placed (count); window: sum of the buckets' ``orders``
    NET_SPEND = "net_spend"  # money; window: sum of the buckets' ``net``; lifetime: ``Aggregates.net``
    GROSS_SPEND = "gross_spend"  # money; window: buckets' ``gross``; lifetime: ``Aggregates.gross``
    RETURNS = "returns"  # order_returned events (count); window: buckets' counts; lifetime: counts
    EVENTS = "events"  # events of ``event_type`` (count); window: buckets' counts; lifetime: counts
    DAYS_SINCE_LAST_ORDER = (
        "days_since_last_order"  # UTC days from last_order_at's day to today; absent before
    )
    RETURN_RATE = "return_rate"  # Aggregates.return_rate(): returned orders per order, 0 without orders
    AVERAGE_ORDER_VALUE = "average_order_value"  # money, Aggregates.average_order_value(); absent without


WINDOWED = frozenset({Metric.ORDERS, Metric.NET_SPEND, Metric.GROSS_SPEND, Metric.RETURNS, Metric.EVENTS})
MONEY = frozenset({Metric.NET_SPEND, Metric.GROSS_SPEND, Metric.AVERAGE_ORDER_VALUE})


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


type Scalar = (
    Annotated[str, Field(max_length=MAX_STRING_LENGTH)]
    | bool
    | int
    | Annotated[float, Field(allow_inf_nan=False)]
)
type TraitPath = Annotated[
    tuple[Annotated[str, Field(min_length=1, max_length=64)], ...],
    Field(min_length=1, max_length=MAX_TRAIT_PATH),
]


class TraitTest(_Node):
    """``traits.a.b <op> value``: the trait at the dotted path (``traits["a"]["b"]``)."""

    kind: Literal["trait"] = "trait"
    path: TraitPath
    op: Comparison
    value: Scalar


class TraitIn(_Node):
    """``traits.a in [v1, v2]``: the trait equals one of the values (type-strict ``=``)."""

    kind: Literal["trait_in"] = "trait_in"
    path: TraitPath
    values: tuple[Scalar, ...] = Field(min_length=1, max_length=MAX_LIST_VALUES)


class TraitContains(_Node):
    """``traits.a contains v``: the trait is a list with an element ``= v``, or a string with
    ``v`` (a string) as a substring."""

    kind: Literal["trait_contains"] = "trait_contains"
    path: TraitPath
    value: Scalar


class TraitExists(_Node):
    """``traits.a exists``: the path leads to a value that is not null."""

    kind: Literal["trait_exists"] = "trait_exists"
    path: TraitPath


class MetricTest(_Node):
    """``orders(last 365d) >= 3``, ``net_spend > 500.00``, ``events("product_view", last 7d) > 0``,
    ``return_rate > 0.3``. ``value`` is an int for counts, days and money (minor units) and a
    float for ``return_rate``."""

    kind: Literal["metric"] = "metric"
    metric: Metric
    window_days: int | None = Field(default=None, ge=1)  # only for WINDOWED metrics; None: lifetime
    event_type: EventType | None = None  # only, and always, for Metric.EVENTS
    op: Comparison
    value: int | Annotated[float, Field(allow_inf_nan=False)]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.window_days is not None and self.metric not in WINDOWED:
            raise ValueError(f"{self.metric.value} has no window")
        if (self.event_type is not None) != (self.metric is Metric.EVENTS):
            raise ValueError("event_type goes with the events metric, and only there")
        if isinstance(self.value, float) and self.metric is not Metric.RETURN_RATE:
            raise ValueError(f"{self.metric.value} compares with a whole number")
        return self


class HasExtension(_Node):
    """``has_extension("vip")``: the extension is on the profile and in force at ``now``."""

    kind: Literal["has_extension"] = "has_extension"
    name: str


class HasConsent(_Node):
    """``consent("email_marketing")``: the profile's answer for the purpose is granted."""

    kind: Literal["consent"] = "consent"
    purpose: str


class HasIdentity(_Node):
    """``has_identity(EMAIL)``: the profile has at least one identity of this type."""

    kind: Literal["has_identity"] = "has_identity"
    identity_type: IdentityType


class UsedChannel(_Node):
    """``used_channel("store")``: at least one event came through the channel (lifetime)."""

    kind: Literal["used_channel"] = "used_channel"
    channel: Channel


class RedeemedCoupon(_Node):
    """``redeemed_coupon("spring", last 30d)``: an order of the profile redeemed an issued coupon
    of the campaign on one of the window's UTC days or later (the latest such day is kept per
    campaign, for the profile's latest 100 campaigns)."""

    kind: Literal["redeemed_coupon"] = "redeemed_coupon"
    campaign: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    window_days: int = Field(ge=1)


class InSegment(_Node):
    """``in_segment("vip-buyers")``: the profile is in that segment (its rule holds)."""

    kind: Literal["in_segment"] = "in_segment"
    key: str


class Not(_Node):
    """``not clause``: true exactly when the clause is false (an absent value's test included)."""

    kind: Literal["not"] = "not"
    clause: "Rule"


class And(_Node):
    """``a and b and ...``: every clause holds."""

    kind: Literal["and"] = "and"
    clauses: tuple["Rule", ...] = Field(min_length=2)


class Or(_Node):
    """``a or b or ...``: at least one clause holds."""

    kind: Literal["or"] = "or"
    clauses: tuple["Rule", ...] = Field(min_length=2)


type Rule = Annotated[
    TraitTest
    | TraitIn
    | TraitContains
    | TraitExists
    | MetricTest
    | HasExtension
    | HasConsent
    | HasIdentity
    | UsedChannel
    | RedeemedCoupon
    | InSegment
    | Not
    | And
    | Or,
    Field(discriminator="kind"),
]

Not.model_rebuild()
And.model_rebuild()
Or.model_rebuild()


def referenced_segments(rule: Rule) -> set[str]:
    """The keys of the segments ``rule`` uses through ``in_segment``, directly."""
    match rule:
        case InSegment(key=key):
            return {key}
        case Not(clause=clause):
            return referenced_segments(clause)
        case And(clauses=clauses) | Or(clauses=clauses):
            return set().union(*(referenced_segments(c) for c in clauses))
        case _:
            return set()


def referenced_extensions(rule: Rule) -> set[str]:
    match rule:
        case HasExtension(name=name):
            return {name}
        case Not(clause=clause):
            return referenced_extensions(clause)
        case And(clauses=clauses) | Or(clauses=clauses):
            return set().union(*(referenced_extensions(c) for c in clauses))
        case _:
            return set()
