"""`/api/users`: register, login, profile (seed section 1), on `models.accounts`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from bff.rest.auth import audited, client_of, count_mutation, services_of, signed_in
from bff.rest.problems import RESPONSES, ProblemError
from bff.rest.shapes import (
    LoginRequest,
    LoginResponse,
    MessageResponse,
    ProfileResponse,
    ProfileUpdate,
    RegisterRequest,
    RegisterResponse,
)
from models.accounts import Principal, ProfileChanges, Proof
from models.errors import DomainError

router = APIRouter(prefix="/users", tags=["users"], responses=RESPONSES)


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: RegisterRequest, request: Request) -> RegisterResponse:
    """Create an account (GraphQL `register`)."""
    await count_mutation(request, None)
    try:
        user = await services_of(request).accounts.register(
            body.username, body.email, body.password
        )
    except DomainError as exc:
        await audited(
            request, "account.registered", None, None, ",".join(p.code.value for p in exc.problems)
        )
        raise ProblemError.of(exc) from None
    await audited(request, "account.registered", None, user.id, "ok")
    return RegisterResponse(userId=str(user.id), message="User registered successfully")


@router.post("/login")
async def login(body: LoginRequest, request: Request) -> LoginResponse:
    """Sign in (GraphQL `login`): an access token for `Authorization: Bearer`."""
    await count_mutation(request, None)
    try:
        issued = await services_of(request).accounts.login(
            body.email, body.password, body.otp, client_of(request)
        )
    except DomainError as exc:
        await audited(
            request, "auth.sign_in", None, None, ",".join(p.code.value for p in exc.problems)
        )
        raise ProblemError.of(exc) from None
    await audited(request, "auth.sign_in", None, issued.user.id, "ok")
    return LoginResponse(token=issued.access_token, userId=str(issued.user.id))


@router.get("/profile")
async def profile(
    request: Request, principal: Annotated[Principal, Depends(signed_in("Query", "me"))]
) -> ProfileResponse:
    """The caller's profile (GraphQL `me`)."""
    user = await services_of(request).accounts.get_user(principal.user_id)
    if user is None:
        raise ProblemError("NOT_FOUND", "No such user.")
    return ProfileResponse(
        userId=str(user.id), username=user.username, email=user.email, createdAt=user.created_at
    )


@router.put("/profile")
async def update_profile(
    body: ProfileUpdate,
    request: Request,
    principal: Annotated[Principal, Depends(signed_in("Mutation", "updateProfile", mutates=True))],
) -> MessageResponse:
    """Change the username, or ask for a new email (GraphQL `updateProfile`: a new email
    takes effect once confirmed from its inbox)."""
    changes = ProfileChanges(username=body.username, email=body.email)
    try:
        await services_of(request).accounts.update_profile(
            principal.user_id, changes, Proof(principal.session_id, None, None)
        )
    except DomainError as exc:
        await audited(
            request,
            "account.profile_updated",
            principal.user_id,
            principal.user_id,
            ",".join(p.code.value for p in exc.problems),
        )
        raise ProblemError.of(exc) from None
    await audited(request, "account.profile_updated", principal.user_id, principal.user_id, "ok")
    return MessageResponse(message="Profile updated successfully")
