"""Usage and routing statistics, read from metering's documents (the read model ``modelyard_usage.read``)."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from modelyard_usage import read

from ..errors import InvalidField
from ..permissions import Action
from ..service import utcnow
from .deps import TenantAccess, platform_admin, tenant_access

router = APIRouter(tags=["usage"])
MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    start: date
    end: date


def period(
    start: Annotated[date | None, Query(description="First day (UTC), default: the first of this month.")] = None,
    end: Annotated[date | None, Query(description="Last day (UTC, inclusive), default: today.")] = None,
) -> Period:
    today = utcnow().date()
    end = end or today
    start = start or end.replace(day=1)
    if start > end:
        raise InvalidField([{"loc": ["query", "start"], "msg": "start is after end", "type": "value_error"}])
    if end - start > timedelta(days=MAX_DAYS):
        raise InvalidField([{"loc": ["query", "start"], "msg": f"at most {MAX_DAYS} days per request", "type": "value_error"}])
    return Period(start, end)


Reader = Annotated[TenantAccess, Depends(tenant_access(Action.READ))]
Range = Annotated[Period, Depends(period)]


@router.get("/v1/tenants/{tenant_id}/usage")
async def tenant_usage(access: Reader, span: Range, request: Request) -> dict[str, Any]:
    """Queries, model calls, tokens, cost and savings: totals, per model and per day."""
    return await read.usage_metrics(request.app.state.db, access.tenant_id, span.start, span.end)


@router.get("/v1/tenants/{tenant_id}/routing-stats")
async def tenant_routing_stats(access: Reader, span: Range, request: Request) -> dict[str, Any]:
    """SLM/LLM split, cascade rate and savings against sending everything to the LLM, with per-agent rows."""
    return await read.routing_stats(request.app.state.db, access.tenant_id, span.start, span.end)


@router.get("/v1/statistics", dependencies=[Depends(platform_admin)])
async def statistics(span: Range, request: Request) -> dict[str, Any]:
    """Across every tenant (platform administrator): totals and one row per tenant."""
    return await read.tenant_statistics(request.app.state.db, span.start, span.end)


@router.get("/v1/statistics/routing", dependencies=[Depends(platform_admin)])
async def platform_routing_stats(span: Range, request: Request) -> dict[str, Any]:
    """Routing split, cascade rate and savings across every tenant (platform administrator)."""
    return await read.routing_stats(request.app.state.db, None, span.start, span.end)
