"""Billing: a tenant's monthly report, the monthly close, the tenant's payment-provider customer id.

The reports are ``modelyard_billing``'s (the same code as ``modelyard billing report``): base price by
tier period, usage by class and model from metering's documents, overage, savings, adjustments.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from modelyard_billing import Billing, InvalidMonth, Month, MonthNotOver, MonthReport
from modelyard_billing.months import MONTH_PATTERN
from pydantic import BaseModel, Field

from ..errors import Conflict, InvalidField
from ..permissions import Action
from ..service import utcnow
from .deps import TenantAccess, platform_admin, tenant_access

router = APIRouter(tags=["billing"])
MonthPath = Annotated[str, Path(pattern=MONTH_PATTERN, description="Calendar month (UTC), YYYY-MM.", examples=["2026-11"])]
Reader = Annotated[TenantAccess, Depends(tenant_access(Action.READ))]
Admin = Depends(platform_admin)


def get_billing(request: Request) -> Billing:
    return request.app.state.billing


BillingDep = Annotated[Billing, Depends(get_billing)]


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except InvalidMonth as exc:  # the path pattern catches this first; kept for callers that bypass it
        raise InvalidField([{"loc": ["path", "month"], "msg": str(exc), "type": "value_error"}]) from None


class CustomerIn(BaseModel):
    stripe_customer_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_]+$", examples=["cus_NciAYcXfLnqBoz"])


class CloseOut(BaseModel):
    month: str
    results: list[dict[str, Any]] = Field(description="Per tenant: closed, adjusted (late usage recorded) or unchanged.")


@router.get("/v1/tenants/{tenant_id}/billing/{month}")
async def tenant_report(month: MonthPath, access: Reader, billing: BillingDep) -> MonthReport:
    """The tenant's report of one month: base price per tier period (prorated by day), usage by model class
    and model, included volume, overage, savings, and — once the month is closed — the frozen lines with
    their adjustments. Amounts in cents; model cost in nano-USD."""
    return await billing.report(access.tenant, _month(month))


@router.post("/v1/billing/{month}/close", dependencies=[Admin])
async def close_month(month: MonthPath, billing: BillingDep) -> CloseOut:
    """Freeze every tenant's report of a month that is over (platform administrator); run again, it
    records usage metered since as adjustment lines. 409 for a month not yet over."""
    try:
        results = await billing.close(_month(month), now=utcnow())
    except MonthNotOver as exc:
        raise Conflict(str(exc), month=month) from None
    return CloseOut(month=month, results=[r.as_dict() for r in results])


@router.put("/v1/tenants/{tenant_id}/billing/customer", dependencies=[Admin])
async def set_customer(body: CustomerIn, access: Annotated[TenantAccess, Depends(tenant_access(Action.ADMINISTER))],
                       billing: BillingDep) -> CustomerIn:
    """The tenant's customer id at the payment provider (platform administrator): the export's
    ``payload[stripe_customer_id]``."""
    await billing.store.set_customer_id(access.tenant_id, body.stripe_customer_id, utcnow())
    return body
