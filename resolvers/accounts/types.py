"""GraphQL types of the accounts domain."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import strawberry

from models.users import ADDRESS_COLUMN, DATE_OF_BIRTH_COLUMN, PHONE_COLUMN
from models.users import KycStatus as KycStatusModel
from models.users import Role as RoleModel
from models.users import User as UserModel
from resolvers.context import Context
from resolvers.errors import UserError

# The model enums are the GraphQL enums (strawberry.enum registers the class in place).
Role = strawberry.enum(RoleModel, name="Role")
KycStatus = strawberry.enum(KycStatusModel, name="KycStatus")


@strawberry.type(name="User")
class UserType:
    id: strawberry.ID
    username: str
    email: str
    role: RoleModel
    created_at: datetime
    two_factor_enabled: bool
    kyc_status: KycStatusModel
    first_name: str | None
    last_name: str | None
    preferred_language: str
    base_currency: str
    # Sealed at rest (models/envelope.py); opened only when the field is asked for.
    phone_sealed: strawberry.Private[bytes | None]
    date_of_birth_sealed: strawberry.Private[bytes | None]
    address_sealed: strawberry.Private[bytes | None]
    legacy: strawberry.Private[tuple[str | None, date | None, str | None]]

    @strawberry.field
    async def phone_number(self, info: strawberry.Info[Context, None]) -> str | None:
        if self.phone_sealed is None:
            return self.legacy[0]
        return await info.context.services.fields.open(
            self.phone_sealed, column=PHONE_COLUMN, row=self.id
        )

    @strawberry.field
    async def date_of_birth(self, info: strawberry.Info[Context, None]) -> date | None:
        if self.date_of_birth_sealed is None:
            return self.legacy[1]
        fields = info.context.services.fields
        born = await fields.open(
            self.date_of_birth_sealed, column=DATE_OF_BIRTH_COLUMN, row=self.id
        )
        return date.fromisoformat(born)

    @strawberry.field
    async def address(self, info: strawberry.Info[Context, None]) -> str | None:
        if self.address_sealed is None:
            return self.legacy[2]
        return await info.context.services.fields.open(
            self.address_sealed, column=ADDRESS_COLUMN, row=self.id
        )

    @strawberry.field(
        description="The tax id given for identity verification, masked (***-**-6789); "
        "null before `submitKyc`. The full number is never shown."
    )
    async def tax_id_masked(self, info: strawberry.Info[Context, None]) -> str | None:
        return await info.context.services.kyc.tax_id_masked(uuid.UUID(str(self.id)))

    @strawberry.field(
        description="A new email waiting for its owner's confirmation (the link mailed to it); "
        "`email` changes only then."
    )
    async def pending_email(self, info: strawberry.Info[Context, None]) -> str | None:
        return await info.context.services.accounts.pending_email(uuid.UUID(str(self.id)))

    @classmethod
    def from_model(cls, user: UserModel) -> UserType:
        return cls(
            id=strawberry.ID(str(user.id)),
            username=user.username,
            email=user.email,
            role=user.role,
            created_at=user.created_at,
            two_factor_enabled=user.two_factor_enabled,
            kyc_status=user.kyc_status,
            first_name=user.first_name,
            last_name=user.last_name,
            preferred_language=user.preferred_language,
            base_currency=user.base_currency,
            phone_sealed=user.phone_sealed,
            date_of_birth_sealed=user.date_of_birth_sealed,
            address_sealed=user.address_sealed,
            legacy=(user.legacy_phone_number, user.legacy_date_of_birth, user.legacy_address),
        )


@strawberry.input
class RegisterInput:
    username: str
    email: str
    password: str


@strawberry.input
class LoginInput:
    email: str
    password: str
    otp: str | None = strawberry.field(
        default=None, description="A TOTP code or an unused recovery code, when 2FA is on."
    )


@strawberry.input
class UpdateProfileInput:
    username: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone_number: str | None = None
    date_of_birth: date | None = None
    address: str | None = None
    preferred_language: str | None = None
    base_currency: str | None = None
    current_password: str | None = strawberry.field(
        default=None,
        description="Needed to change the email, unless this session signed in with the "
        "password in the last few minutes (REAUTHENTICATION_REQUIRED).",
    )
    otp: str | None = strawberry.field(
        default=None, description="With currentPassword, when two-factor sign-in is on."
    )


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class ResetPasswordInput:
    token: str
    new_password: str


@strawberry.type
class RegisterPayload:
    user: UserType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LoginPayload:
    token: str | None = strawberry.field(default=None, description="Access token (Bearer).")
    refresh_token: str | None = None
    token_expires_at: datetime | None = None
    user: UserType | None = None
    two_factor_required: bool = False
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LogoutPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UpdateProfilePayload:
    user: UserType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ConfirmEmailChangePayload:
    user: UserType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ChangePasswordPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BeginTwoFactorSetupPayload:
    secret: str | None = None
    otpauth_uri: str | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ConfirmTwoFactorPayload:
    recovery_codes: list[str] | None = strawberry.field(
        default=None, description="Shown once: each works a single time in place of a code."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DisableTwoFactorPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RequestPasswordResetPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ResetPasswordPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
