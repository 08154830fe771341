"""Coupon campaigns, issuing codes (to a profile or for a flyer), and ``couponPerformance``."""

from datetime import datetime
from typing import Annotated

import strawberry

from profilegate.api.context import Info
from profilegate.api.errors import (
    InvalidInputError,
    ProfileNotFoundError,
    UnknownCampaignError,
    bad_input,
    error_result,
)
from profilegate.api.metrics import Money
from profilegate.api.permissions import ADMIN, allow
from profilegate.api.types import ProfileRefInput
from profilegate.domain.coupons import (
    CODE_LENGTH,
    MAX_COUPONS_PER_CALL,
    Coupon,
    RedemptionRule,
    UnknownCampaign,
)
from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.domain.events import Channel
from profilegate.domain.keys import Role
from profilegate.service import coupons as service
from profilegate.storage.coupons import CampaignOutcome, ChannelFigures

COUPON_ISSUERS = allow(Role.ADMIN, Role.PARTNER)

strawberry.enum(
    RedemptionRule,
    name="RedemptionRule",
    description="ONCE: a code redeems one order, a second is refused. COUNTED: every order redeems it.",
)
strawberry.enum(CampaignOutcome, name="CampaignOutcome")


@strawberry.type(name="CouponCampaign")
class CouponCampaignType:
    name: str
    rule: RedemptionRule
    description: str
    created_at: datetime


@strawberry.type(name="Coupon")
class CouponType:
    code: str = strawberry.field(description=f"{CODE_LENGTH} characters; tills may type it in any case.")
    campaign: str
    channel: Channel = strawberry.field(description="Where it was handed out.")
    profile_id: strawberry.ID | None = strawberry.field(
        description="Whose it is; null for an anonymous code."
    )
    issued_at: datetime
    expires_at: datetime
    redemptions: int

    @classmethod
    def from_domain(cls, coupon: Coupon) -> "CouponType":
        return cls(
            code=coupon.code,
            campaign=coupon.campaign,
            channel=coupon.channel,
            profile_id=None if coupon.profile_id is None else strawberry.ID(coupon.profile_id),
            issued_at=coupon.issued_at,
            expires_at=coupon.expires_at,
            redemptions=coupon.redemptions,
        )


@strawberry.type
class CampaignDefined:
    campaign: CouponCampaignType
    outcome: CampaignOutcome


@strawberry.type
class CouponIssued:
    coupon: CouponType


@strawberry.type
class CouponsIssued:
    coupons: list[CouponType]


@strawberry.type(
    description="Coupons handed out on `channel` (`issued`, `redeemed`: how many of them were), or "
    "redemptions made on `channel`, with the revenue of their orders."
)
class CouponChannelFigures:
    channel: Channel
    issued: int
    redeemed: int
    redemptions: int
    revenue: Money


@strawberry.type
class CouponPerformance:
    campaign: str
    issued: int
    redeemed: int = strawberry.field(description="Coupons redeemed at least once.")
    redemptions: int = strawberry.field(description="Orders that redeemed a coupon of the campaign.")
    redemption_rate: float = strawberry.field(description="redeemed / issued, 0 to 1 (0 when none issued).")
    revenue: Money = strawberry.field(description="Gross total of the orders that redeemed a coupon.")
    median_days_to_redeem: float | None = strawberry.field(
        description="Median whole days from issue to a coupon's first redemption; null when none was."
    )
    by_issue_channel: list[CouponChannelFigures]
    by_redemption_channel: list[CouponChannelFigures]


DefineCampaignResult = Annotated[
    CampaignDefined | InvalidInputError, strawberry.union("DefineCampaignResult")
]
IssueCouponResult = Annotated[
    CouponIssued | InvalidInputError | ProfileNotFoundError | UnknownCampaignError,
    strawberry.union("IssueCouponResult"),
]
IssueCouponsResult = Annotated[
    CouponsIssued | InvalidInputError | UnknownCampaignError, strawberry.union("IssueCouponsResult")
]


@strawberry.type
class CouponQueries:
    @strawberry.field(permission_classes=[COUPON_ISSUERS], description="Null for an unknown campaign.")
    async def coupon_performance(self, info: Info, campaign: str) -> CouponPerformance | None:
        try:
            performance = await service.coupon_performance(info.context.repos, campaign)
        except InvalidInput as error:
            raise bad_input(error) from error
        except UnknownCampaign:
            return None
        currencies = info.context.tracking.events.currencies
        return CouponPerformance(
            campaign=performance.campaign,
            issued=performance.issued,
            redeemed=performance.redeemed,
            redemptions=performance.redemptions,
            redemption_rate=performance.redemption_rate,
            revenue=Money.of(performance.revenue, currencies),
            median_days_to_redeem=performance.median_days_to_redeem,
            by_issue_channel=[_figures(row, info) for row in performance.by_issue],
            by_redemption_channel=[_figures(row, info) for row in performance.by_redemption],
        )


@strawberry.type
class CouponMutations:
    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Create a campaign, or change its description; its rule is fixed when it is created.",
    )
    async def define_coupon_campaign(
        self, info: Info, name: str, rule: RedemptionRule = RedemptionRule.ONCE, description: str = ""
    ) -> DefineCampaignResult:
        try:
            campaign, outcome = await service.define_campaign(
                info.context.repos, name, rule, description, info.context.now
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return CampaignDefined(
            campaign=CouponCampaignType(
                name=campaign.name,
                rule=campaign.rule,
                description=campaign.description,
                created_at=campaign.created_at,
            ),
            outcome=outcome,
        )

    @strawberry.mutation(permission_classes=[COUPON_ISSUERS], description="A fresh code tied to the profile.")
    async def issue_coupon(
        self, info: Info, ref: ProfileRefInput, campaign: str, channel: Channel, expires_at: datetime
    ) -> IssueCouponResult:
        context = info.context
        try:
            coupon = await service.issue_coupon(
                context.repos, ref.to_domain(context.phone_region), campaign, channel, expires_at, context.now
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return CouponIssued(coupon=CouponType.from_domain(coupon))

    @strawberry.mutation(
        permission_classes=[COUPON_ISSUERS],
        description=f"`count` (1 to {MAX_COUPONS_PER_CALL}) anonymous codes, e.g. for a flyer; "
        "an order redeeming one needs an identity of its own.",
    )
    async def issue_coupons(
        self, info: Info, campaign: str, count: int, expires_at: datetime, channel: Channel = Channel.STORE
    ) -> IssueCouponsResult:
        context = info.context
        try:
            coupons = await service.issue_coupons(
                context.repos, campaign, count, channel, expires_at, context.now
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return CouponsIssued(coupons=[CouponType.from_domain(coupon) for coupon in coupons])


def _figures(row: ChannelFigures, info: Info) -> CouponChannelFigures:
    return CouponChannelFigures(
        channel=row.channel,
        issued=row.issued,
        redeemed=row.redeemed,
        redemptions=row.redemptions,
        revenue=Money.of(row.revenue, info.context.tracking.events.currencies),
    )
