"""Who may touch what: the one ownership rule every context applies."""

from __future__ import annotations

import uuid
from typing import Protocol


class Actor(Protocol):
    """The caller of a service function (an identity `User` satisfies it)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def is_admin(self) -> bool: ...


def may_access(actor: Actor, owner_id: uuid.UUID) -> bool:
    """Owners reach their own things; admins reach everything."""
    return actor.is_admin or actor.id == owner_id
