"""GraphQL of analytics: the dashboard and the summary (their REST shapes as JSON objects),
the series and the event log as types."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from mornet.analytics import service
from mornet.analytics.schemas import EventOut, SeriesOut, SeriesPointOut
from mornet.chain.dependencies import chain_of
from mornet.graphql import Info
from mornet.pagination import MAX_LIMIT, PageRequest
from mornet.treasury import service as treasury


@strawberry.experimental.pydantic.type(model=SeriesPointOut, all_fields=True, name="SeriesPoint")
class SeriesPointType:
    """A bucket's start and the metric's value in it."""


@strawberry.experimental.pydantic.type(model=SeriesOut, all_fields=True, name="Series")
class SeriesType:
    """A metric over time."""


@strawberry.experimental.pydantic.type(model=EventOut, all_fields=True, name="LoggedEvent")
class EventType:
    """An entry of the event log."""


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(description="Your households, wallet and prepaid days (as in REST).")
    async def dashboard(self, info: Info) -> JSON:
        user = await info.context.user()
        board = await service.dashboard(
            info.context.session, chain_of(info.context.platform), actor=user
        )
        return cast(JSON, board.model_dump(mode="json"))

    @strawberry.field(description="Operators: the platform at a glance (as in REST).")
    async def analytics_summary(self, info: Info) -> JSON:
        await info.context.admin()
        session, handle = info.context.session, chain_of(info.context.platform)
        configured = info.context.platform.settings.treasury_address
        figures = await service.summary(
            session,
            handle,
            treasury=await treasury.revenue_address(session, handle, configured),
        )
        return cast(JSON, figures.model_dump(mode="json"))

    @strawberry.field(description="Operators: a metric per hour or day over [from, to).")
    async def series(
        self,
        info: Info,
        metric: str,
        start: Annotated[datetime, strawberry.argument(name="from")],
        end: Annotated[datetime, strawberry.argument(name="to")],
        granularity: str = "hour",
    ) -> SeriesType:
        await info.context.admin()
        out = await service.series(
            info.context.session, metric=metric, granularity=granularity, start=start, end=end
        )
        return SeriesType.from_pydantic(out)

    @strawberry.field(description="Operators: the event log, newest first.")
    async def events(
        self,
        info: Info,
        kind: str | None = None,
        actor: uuid.UUID | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[EventType]:
        await info.context.admin()
        found, _ = await service.events(
            info.context.session,
            kind=kind,
            actor_id=actor,
            start=None,
            end=None,
            page=PageRequest(offset=max(offset, 0), limit=min(max(limit, 1), MAX_LIMIT)),
        )
        return [EventType.from_pydantic(e) for e in found]
