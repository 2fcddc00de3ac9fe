"""One way to page through a list, for every context: the query parameters, the repository
helper that returns one page and the total, and the `Page[T]` the API answers with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
MAX_LIMIT = 200
MAX_OFFSET = 1_000_000_000
"""Beyond any list here, and within a 64-bit OFFSET on every database."""


@dataclass(frozen=True)
class PageRequest:
    offset: int = 0
    limit: int = 50


async def page_request(
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items in the page.")] = 50,
) -> PageRequest:
    return PageRequest(offset=offset, limit=limit)


PageParams = Annotated[PageRequest, Depends(page_request)]


class Page(BaseModel, Generic[T]):
    """A slice of a list, in a stable order, with the size of the whole list."""

    items: list[T]
    total: int = Field(ge=0, description="Items in the whole list.")
    offset: int = Field(ge=0)
    limit: int = Field(ge=1, le=MAX_LIMIT)


async def fetch_page(
    session: AsyncSession, statement: Select[*tuple[Any, ...]], page: PageRequest
) -> tuple[Sequence[Any], int]:
    """The rows of `statement` (which must be ordered, to be stable) in `page`, and how many
    it has in all. Rows are scalars for a one-entity select, tuples otherwise."""
    total = await session.scalar(
        select(func.count()).select_from(statement.order_by(None).subquery())
    )
    paged = statement.offset(page.offset).limit(page.limit)
    result = await session.execute(paged)
    rows = result.scalars().all() if len(statement.column_descriptions) == 1 else result.all()
    return rows, int(total or 0)


def page_of(items: list[T], total: int, page: PageRequest) -> Page[T]:
    return Page[T](items=items, total=total, offset=page.offset, limit=page.limit)
