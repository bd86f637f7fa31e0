"""`/api/transactions`: deposit, withdraw, history (seed section 5), on `models.funds`.

`Idempotency-Key` is required on both POSTs (the ledger's own idempotency key): a retry with
the same key answers the same transaction, never a second one.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Request, Response, status

from bff.rest.auth import audited, own, services_of, signed_in
from bff.rest.problems import RESPONSES, ProblemError
from bff.rest.shapes import (
    DepositRequest,
    TransactionItem,
    TransactionResult,
    TransactionsResponse,
    WithdrawRequest,
    money,
)
from models.accounts import Principal, Proof
from models.errors import DomainError
from models.funds import FundTransaction, TransactionType
from resolvers.permissions import MayMoveMoney

router = APIRouter(prefix="/transactions", tags=["transactions"], responses=RESPONSES)
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=64,
        description="Required: the same key answers the same transaction.",
    ),
]


def _result(txn: FundTransaction) -> TransactionResult:
    return TransactionResult(transactionId=str(txn.id), status=txn.status.value)


@router.post("/deposit", status_code=status.HTTP_201_CREATED)
async def deposit(
    body: DepositRequest,
    request: Request,
    response: Response,
    principal: Annotated[
        Principal, Depends(signed_in("Mutation", "deposit", MayMoveMoney.roles, mutates=True))
    ],
    idempotency_key: IdempotencyKey,
) -> TransactionResult:
    """Deposit through the payment rail (GraphQL `deposit`)."""
    own(principal, body.userId)
    try:
        txn = await services_of(request).funds.deposit(
            principal.user_id, body.amount, body.currency, body.paymentMethod, idempotency_key
        )
    except DomainError as exc:
        await audited(
            request,
            "funds.deposit",
            principal.user_id,
            principal.user_id,
            ",".join(p.code.value for p in exc.problems),
        )
        raise ProblemError.of(exc) from None
    await audited(request, "funds.deposit", principal.user_id, principal.user_id, "ok")
    return _result(txn)


@router.post("/withdraw", status_code=status.HTTP_201_CREATED)
async def withdraw(
    body: WithdrawRequest,
    request: Request,
    principal: Annotated[
        Principal, Depends(signed_in("Mutation", "withdraw", MayMoveMoney.roles, mutates=True))
    ],
    idempotency_key: IdempotencyKey,
) -> TransactionResult:
    """Withdraw (GraphQL `withdraw`): a method never used before needs fresh proof."""
    own(principal, body.userId)
    services = services_of(request)
    proof = Proof(principal.session_id, body.currentPassword, body.otp)

    async def prove_new_method() -> None:
        user = await services.accounts.get_user(principal.user_id)
        assert user is not None  # signed in
        await services.accounts.require_fresh_proof(user, proof)

    try:
        txn = await services.funds.withdraw(
            principal.user_id,
            body.amount,
            body.currency,
            body.withdrawalMethod,
            idempotency_key,
            prove_new_method=prove_new_method,
        )
    except DomainError as exc:
        await audited(
            request,
            "funds.withdrawal",
            principal.user_id,
            principal.user_id,
            ",".join(p.code.value for p in exc.problems),
        )
        raise ProblemError.of(exc) from None
    await audited(request, "funds.withdrawal", principal.user_id, principal.user_id, "ok")
    return _result(txn)


@router.get("/history/{userId}")
async def history(
    userId: str,
    request: Request,
    principal: Annotated[Principal, Depends(signed_in("Query", "transactions"))],
    startDate: date | None = None,
    endDate: date | None = None,
    type: Literal["DEPOSIT", "WITHDRAWAL", "DIVIDEND", "CASH_IN_LIEU"] | None = None,
) -> TransactionsResponse:
    """Deposits and withdrawals, newest first, at most 100 (GraphQL `transactions`)."""
    own(principal, userId)
    try:
        page = await services_of(request).funds.transactions(
            principal.user_id,
            kind=TransactionType(type) if type else None,
            start_date=startDate,
            end_date=endDate,
            first=100,
            after=None,
        )
    except DomainError as exc:
        raise ProblemError.of(exc) from None
    return TransactionsResponse(
        transactions=[
            TransactionItem(
                transactionId=str(t.id),
                type=t.type.value,
                amount=money(t.amount, t.currency),
                currency=t.currency,
                status=t.status.value,
                timestamp=t.created_at,
            )
            for t in page.items
        ]
    )
