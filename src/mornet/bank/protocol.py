"""T-Bank's acquiring protocol (API v2): how every request and every notification is signed,
and the statuses a payment moves through. Shared by the adapter (our side) and the sandbox
bank (the bank's side), so both sign and check exactly alike."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from enum import StrEnum


class PaymentStatus(StrEnum):
    NEW = "NEW"
    FORM_SHOWED = "FORM_SHOWED"
    AUTHORIZING = "AUTHORIZING"
    AUTHORIZED = "AUTHORIZED"
    CONFIRMING = "CONFIRMING"
    CONFIRM_CHECKING = "CONFIRM_CHECKING"
    """The outcome is unknown to the bank for now: ask GetState later."""
    CONFIRMED = "CONFIRMED"
    REVERSED = "REVERSED"
    PARTIAL_REFUNDED = "PARTIAL_REFUNDED"
    REFUNDED = "REFUNDED"
    REJECTED = "REJECTED"
    DEADLINE_EXPIRED = "DEADLINE_EXPIRED"
    CANCELED = "CANCELED"


class PayoutStatus(StrEnum):
    """A payout to a card (T-Bank's e2c protocol): Init checks it (CHECKED), Payment sends it
    (CREDIT_CHECKING), and the bank reports the outcome."""

    NEW = "NEW"
    CHECKING = "CHECKING"
    CHECKED = "CHECKED"
    CREDIT_CHECKING = "CREDIT_CHECKING"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"


LINKCARD = "LINKCARD"
"""`NotificationType` of the bank's notification that a card was bound (or refused)."""


def _text(value: object) -> str:
    # The bank writes booleans as JSON does; Python's str(True) is "True" and breaks the token.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def sign(fields: Mapping[str, object], password: str) -> str:
    """The `Token` of a request or notification: the top-level scalar fields (nested objects
    such as Receipt and DATA are left out, and so is Token itself) plus `Password`, sorted by
    key, their values concatenated, SHA-256, hex."""
    signed = {
        key: value
        for key, value in fields.items()
        if key != "Token" and value is not None and not isinstance(value, Mapping | list)
    }
    signed["Password"] = password
    return hashlib.sha256(
        "".join(_text(signed[key]) for key in sorted(signed)).encode()
    ).hexdigest()


def verify(fields: Mapping[str, object], password: str) -> bool:
    """Whether `fields` carry the Token the bank computes with `password` (constant time)."""
    token = fields.get("Token")
    if not isinstance(token, str):
        return False
    return hmac.compare_digest(token.lower(), sign(fields, password))
