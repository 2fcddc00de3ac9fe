"""Who may touch what: the one ownership rule every context applies."""

from __future__ import annotations

import uuid
from typing import Protocol

from sqlalchemy import ColumnElement, true
from sqlalchemy.orm import QueryableAttribute


class Actor(Protocol):
    """The caller of a service function (an identity `User` satisfies it)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def is_admin(self) -> bool: ...


def may_access(actor: Actor, owner_id: uuid.UUID) -> bool:
    """Owners reach their own things; admins reach everything."""
    return actor.is_admin or actor.id == owner_id


def readable_by(
    actor: Actor, owner_id: QueryableAttribute[uuid.UUID] | ColumnElement[uuid.UUID]
) -> ColumnElement[bool]:
    """`may_access` as a SQL filter, so a query returns only what the actor may see (a row
    of someone else is then simply not found: the same 404 as a missing one)."""
    return true() if actor.is_admin else owner_id == actor.id
