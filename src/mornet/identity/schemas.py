from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from mornet.fields import TrimmedText
from mornet.identity.models import Role as Role
from mornet.identity.models import UserStatus

MIN_PASSWORD_LENGTH = 8
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)]
FullName = Annotated[str, TrimmedText(200)]


class RegisterRequest(BaseModel):
    email: EmailStr
    password: Password
    full_name: FullName


class LoginRequest(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105  # the OAuth2 token type, not a secret
    expires_in: int
    """Seconds until the token expires."""


class ProfileUpdate(BaseModel):
    full_name: FullName | None = None
    current_password: str | None = Field(default=None, max_length=256)
    new_password: Password | None = None

    @model_validator(mode="after")
    def _password_change_needs_current(self) -> ProfileUpdate:
        if self.new_password is not None and not self.current_password:
            raise ValueError("current_password is required to set a new password")
        return self


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    status: UserStatus
    created_at: datetime
    blocked_at: datetime | None
