"""Accounts: registration, sign-in, sessions, profile, two-factor and password reset."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import strawberry
from strawberry.types import Info

from models.accounts import IssuedTokens, ProfileChanges, TwoFactorRequired
from models.errors import DomainError
from resolvers.accounts.types import (
    BeginTwoFactorSetupPayload,
    ChangePasswordInput,
    ChangePasswordPayload,
    ConfirmTwoFactorPayload,
    DisableTwoFactorPayload,
    LoginInput,
    LoginPayload,
    LogoutPayload,
    RegisterInput,
    RegisterPayload,
    RequestPasswordResetPayload,
    ResetPasswordInput,
    ResetPasswordPayload,
    UpdateProfileInput,
    UpdateProfilePayload,
    UserType,
)
from resolvers.context import Context
from resolvers.errors import user_errors
from resolvers.permissions import IsAuthenticated

AuthInfo = Info[Context, Any]


def _signed_in(tokens: IssuedTokens) -> LoginPayload:
    return LoginPayload(
        token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_expires_at=tokens.access_expires_at,
        user=UserType.from_model(tokens.user),
    )


@strawberry.type
class AccountsQuery:
    @strawberry.field(permission_classes=[IsAuthenticated], description="The signed-in user.")
    async def me(self, info: AuthInfo) -> UserType | None:
        principal = await info.context.require_principal()
        user = await info.context.services.accounts.get_user(principal.user_id)
        return UserType.from_model(user) if user else None


@strawberry.type
class AccountsMutation:
    @strawberry.mutation
    async def register(self, info: AuthInfo, input: RegisterInput) -> RegisterPayload:
        try:
            user = await info.context.services.accounts.register(
                input.username, input.email, input.password
            )
        except DomainError as exc:
            return RegisterPayload(errors=user_errors(exc))
        return RegisterPayload(user=UserType.from_model(user))

    @strawberry.mutation
    async def login(self, info: AuthInfo, input: LoginInput) -> LoginPayload:
        try:
            tokens = await info.context.services.accounts.login(
                input.email, input.password, input.otp, info.context.client
            )
        except TwoFactorRequired as exc:
            return LoginPayload(two_factor_required=True, errors=user_errors(exc))
        except DomainError as exc:
            return LoginPayload(errors=user_errors(exc))
        return _signed_in(tokens)

    @strawberry.mutation(description="Exchange a refresh token for new tokens; the old one dies.")
    async def refresh_token(self, info: AuthInfo, refresh_token: str) -> LoginPayload:
        try:
            tokens = await info.context.services.accounts.refresh(
                refresh_token, info.context.client
            )
        except DomainError as exc:
            return LoginPayload(errors=user_errors(exc))
        return _signed_in(tokens)

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def logout(self, info: AuthInfo) -> LogoutPayload:
        principal = await info.context.require_principal()
        await info.context.services.accounts.logout(principal.session_id)
        return LogoutPayload()

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def update_profile(
        self, info: AuthInfo, input: UpdateProfileInput
    ) -> UpdateProfilePayload:
        principal = await info.context.require_principal()
        changes = ProfileChanges(
            username=input.username,
            email=input.email,
            first_name=input.first_name,
            last_name=input.last_name,
            phone_number=input.phone_number,
            date_of_birth=input.date_of_birth,
            address=input.address,
            preferred_language=input.preferred_language,
            base_currency=input.base_currency,
        )
        try:
            user = await info.context.services.accounts.update_profile(principal.user_id, changes)
        except DomainError as exc:
            return UpdateProfilePayload(errors=user_errors(exc))
        return UpdateProfilePayload(user=UserType.from_model(user))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Change the password; every session, this one included, is signed out.",
    )
    async def change_password(
        self, info: AuthInfo, input: ChangePasswordInput
    ) -> ChangePasswordPayload:
        principal = await info.context.require_principal()
        try:
            await info.context.services.accounts.change_password(
                principal.user_id, input.current_password, input.new_password
            )
        except DomainError as exc:
            return ChangePasswordPayload(errors=user_errors(exc))
        return ChangePasswordPayload()

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def begin_two_factor_setup(self, info: AuthInfo) -> BeginTwoFactorSetupPayload:
        principal = await info.context.require_principal()
        try:
            secret, uri = await info.context.services.accounts.begin_two_factor(principal.user_id)
        except DomainError as exc:
            return BeginTwoFactorSetupPayload(errors=user_errors(exc))
        return BeginTwoFactorSetupPayload(secret=secret, otpauth_uri=uri)

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def confirm_two_factor(self, info: AuthInfo, otp: str) -> ConfirmTwoFactorPayload:
        principal = await info.context.require_principal()
        try:
            codes = await info.context.services.accounts.confirm_two_factor(principal.user_id, otp)
        except DomainError as exc:
            return ConfirmTwoFactorPayload(errors=user_errors(exc))
        return ConfirmTwoFactorPayload(recovery_codes=codes)

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def disable_two_factor(self, info: AuthInfo, otp: str) -> DisableTwoFactorPayload:
        principal = await info.context.require_principal()
        try:
            await info.context.services.accounts.disable_two_factor(principal.user_id, otp)
        except DomainError as exc:
            return DisableTwoFactorPayload(errors=user_errors(exc))
        return DisableTwoFactorPayload()

    @strawberry.mutation(description="Emails a single-use reset token if the address is known.")
    async def request_password_reset(
        self, info: AuthInfo, email: str
    ) -> RequestPasswordResetPayload:
        base = info.context.services.settings.public_url or str(info.context.request.base_url)

        def link(token: str) -> str:
            return f"{base.rstrip('/')}/reset-password?token={quote(token)}"

        try:
            await info.context.services.accounts.request_password_reset(email, link)
        except DomainError as exc:
            return RequestPasswordResetPayload(errors=user_errors(exc))
        return RequestPasswordResetPayload()

    @strawberry.mutation
    async def reset_password(
        self, info: AuthInfo, input: ResetPasswordInput
    ) -> ResetPasswordPayload:
        try:
            await info.context.services.accounts.reset_password(input.token, input.new_password)
        except DomainError as exc:
            return ResetPasswordPayload(errors=user_errors(exc))
        return ResetPasswordPayload()
