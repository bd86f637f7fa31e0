"""Accounts: registration, sign-in, sessions, profile, two-factor and password reset."""

from __future__ import annotations

import strawberry

from models.accounts import (
    FRESH_PROOF_ERRORS,
    IssuedTokens,
    ProfileChanges,
    Proof,
    TwoFactorRequired,
)
from models.errors import DomainError, ErrorCode
from resolvers.accounts.types import (
    BeginTwoFactorSetupPayload,
    ChangePasswordInput,
    ChangePasswordPayload,
    ConfirmEmailChangePayload,
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
from resolvers.calls import Call, SignedIn, query
from resolvers.errors import user_errors
from resolvers.mutations import mutation
from resolvers.permissions import IsAuthenticated


def _signed_in(tokens: IssuedTokens) -> LoginPayload:
    return LoginPayload(
        token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_expires_at=tokens.access_expires_at,
        user=UserType.from_model(tokens.user),
    )


@strawberry.type
class AccountsQuery:
    @query(IsAuthenticated, description="The signed-in user.")
    async def me(self, call: SignedIn) -> UserType | None:
        user = await call.services.accounts.get_user(call.principal.user_id)
        return UserType.from_model(user) if user else None


def _login_failed(exc: DomainError) -> LoginPayload:
    """A refused sign-in; `twoFactorRequired` tells the client to ask for the code."""
    return LoginPayload(
        two_factor_required=isinstance(exc, TwoFactorRequired), errors=user_errors(exc)
    )


PROFILE_ERRORS = (
    ErrorCode.INVALID_USERNAME,
    ErrorCode.INVALID_EMAIL,
    ErrorCode.USERNAME_TAKEN,
    ErrorCode.EMAIL_TAKEN,
)


@strawberry.type
class AccountsMutation:
    @mutation(
        None,
        errors=(*PROFILE_ERRORS, ErrorCode.WEAK_PASSWORD),
        payload=RegisterPayload,
        audit="account.registered",
    )
    async def register(self, call: Call, input: RegisterInput) -> RegisterPayload:
        user = await call.services.accounts.register(input.username, input.email, input.password)
        return RegisterPayload(user=UserType.from_model(user))

    @mutation(
        None,
        errors=(
            ErrorCode.INVALID_CREDENTIALS,
            ErrorCode.OTP_REQUIRED,
            ErrorCode.INVALID_OTP,
            ErrorCode.ACCOUNT_LOCKED,
            ErrorCode.RATE_LIMITED,
        ),
        payload=LoginPayload,
        failed=_login_failed,
        audit="auth.sign_in",
    )
    async def login(self, call: Call, input: LoginInput) -> LoginPayload:
        tokens = await call.services.accounts.login(
            input.email, input.password, input.otp, call.client
        )
        return _signed_in(tokens)

    @mutation(
        None,
        errors=(ErrorCode.INVALID_TOKEN,),
        payload=LoginPayload,
        description="Exchange a refresh token for new tokens; the old one dies.",
    )
    async def refresh_token(self, call: Call, refresh_token: str) -> LoginPayload:
        tokens = await call.services.accounts.refresh(refresh_token, call.client)
        return _signed_in(tokens)

    @mutation(IsAuthenticated, errors=(), payload=LogoutPayload, audit="auth.sign_out")
    async def logout(self, call: SignedIn) -> LogoutPayload:
        await call.services.accounts.logout(call.principal.session_id)
        return LogoutPayload()

    @mutation(
        IsAuthenticated,
        errors=(
            *PROFILE_ERRORS,
            ErrorCode.INVALID_PHONE_NUMBER,
            ErrorCode.INVALID_DATE_OF_BIRTH,
            ErrorCode.INVALID_LANGUAGE,
            ErrorCode.UNSUPPORTED_CURRENCY,
            ErrorCode.INVALID_INPUT,
            ErrorCode.NOT_FOUND,
            *FRESH_PROOF_ERRORS,
        ),
        payload=UpdateProfilePayload,
        description="Other fields change at once. A new email needs a fresh proof "
        "(currentPassword, unless this session signed in in the last few minutes), tells the "
        "old address, and takes effect when confirmed with the token mailed to the new one "
        "(confirmEmailChange); until then it is `pendingEmail`.",
        audit="account.profile_updated",
    )
    async def update_profile(
        self, call: SignedIn, input: UpdateProfileInput
    ) -> UpdateProfilePayload:
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
        proof = Proof(call.principal.session_id, input.current_password, input.otp)
        user = await call.services.accounts.update_profile(call.principal.user_id, changes, proof)
        return UpdateProfilePayload(user=UserType.from_model(user))

    @mutation(
        None,
        errors=(ErrorCode.INVALID_TOKEN, ErrorCode.EMAIL_TAKEN),
        payload=ConfirmEmailChangePayload,
        description="Make the pending email the account's, with the token mailed to it.",
        audit="account.email_changed",
    )
    async def confirm_email_change(self, call: Call, token: str) -> ConfirmEmailChangePayload:
        user = await call.services.accounts.confirm_email_change(token)
        return ConfirmEmailChangePayload(user=UserType.from_model(user))

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.INVALID_CREDENTIALS, ErrorCode.WEAK_PASSWORD, ErrorCode.NOT_FOUND),
        payload=ChangePasswordPayload,
        description="Change the password; every session, this one included, is signed out.",
        audit="auth.password_changed",
    )
    async def change_password(
        self, call: SignedIn, input: ChangePasswordInput
    ) -> ChangePasswordPayload:
        await call.services.accounts.change_password(
            call.principal.user_id, input.current_password, input.new_password
        )
        return ChangePasswordPayload()

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.TWO_FACTOR_ALREADY_ENABLED, ErrorCode.NOT_FOUND, *FRESH_PROOF_ERRORS),
        payload=BeginTwoFactorSetupPayload,
        description="Needs a fresh proof: currentPassword, unless this session signed in with "
        "the password in the last few minutes.",
        audit="auth.two_factor_setup_begun",
    )
    async def begin_two_factor_setup(
        self, call: SignedIn, current_password: str | None = None
    ) -> BeginTwoFactorSetupPayload:
        secret, uri = await call.services.accounts.begin_two_factor(
            call.principal.user_id, Proof(call.principal.session_id, current_password)
        )
        return BeginTwoFactorSetupPayload(secret=secret, otpauth_uri=uri)

    @mutation(
        IsAuthenticated,
        errors=(
            ErrorCode.INVALID_OTP,
            ErrorCode.TWO_FACTOR_NOT_STARTED,
            ErrorCode.TWO_FACTOR_ALREADY_ENABLED,
        ),
        payload=ConfirmTwoFactorPayload,
        audit="auth.two_factor_enabled",
    )
    async def confirm_two_factor(self, call: SignedIn, otp: str) -> ConfirmTwoFactorPayload:
        codes = await call.services.accounts.confirm_two_factor(call.principal.user_id, otp)
        return ConfirmTwoFactorPayload(recovery_codes=codes)

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.INVALID_OTP, ErrorCode.TWO_FACTOR_NOT_ENABLED, ErrorCode.ACCOUNT_LOCKED),
        payload=DisableTwoFactorPayload,
        audit="auth.two_factor_disabled",
    )
    async def disable_two_factor(self, call: SignedIn, otp: str) -> DisableTwoFactorPayload:
        await call.services.accounts.disable_two_factor(call.principal.user_id, otp)
        return DisableTwoFactorPayload()

    @mutation(
        None,
        errors=(ErrorCode.INVALID_EMAIL,),
        payload=RequestPasswordResetPayload,
        description="Emails a single-use reset token if the address is known.",
        audit="auth.password_reset_requested",
    )
    async def request_password_reset(self, call: Call, email: str) -> RequestPasswordResetPayload:
        await call.services.accounts.request_password_reset(email)
        return RequestPasswordResetPayload()

    @mutation(
        None,
        errors=(ErrorCode.INVALID_TOKEN, ErrorCode.WEAK_PASSWORD),
        payload=ResetPasswordPayload,
        audit="auth.password_reset",
    )
    async def reset_password(self, call: Call, input: ResetPasswordInput) -> ResetPasswordPayload:
        await call.services.accounts.reset_password(input.token, input.new_password)
        return ResetPasswordPayload()
