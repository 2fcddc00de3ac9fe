"""What the bank takes from the running platform, for its routes."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from mornet.bank.runtime import Bank, NotificationDesk
from mornet.bank.service import BankGateway
from mornet.dependencies import platform_of
from mornet.errors import MornetError, may_answer


class BankHost(Protocol):
    bank: Bank | None


class BankNotOpen(MornetError):
    status = 503
    code = "bank_unavailable"

    def __init__(self) -> None:
        super().__init__("the bank is not connected")


def bank_of(platform: object) -> BankGateway:
    """The bank of the composition root (the runtime), narrowed to what bank knows of it."""
    return _open_bank(platform).gateway


def _open_bank(platform: object) -> Bank:
    host: BankHost = platform  # type: ignore[assignment]
    if host.bank is None:
        raise BankNotOpen()
    return host.bank


@may_answer(503)
async def get_bank(request: Request) -> BankGateway:
    return bank_of(platform_of(request))


BankDep = Annotated[BankGateway, Depends(get_bank)]


@may_answer(503)
async def get_notification_desk(request: Request) -> NotificationDesk:
    return _open_bank(platform_of(request)).notifications


NotificationDeskDep = Annotated[NotificationDesk, Depends(get_notification_desk)]
