"""Funds: deposits, withdrawals, the cash account and the transaction history."""

from __future__ import annotations

from datetime import date

import strawberry

from models.accounts import FRESH_PROOF_ERRORS, Proof
from models.errors import DomainError, ErrorCode
from models.funds import TransactionType as TransactionTypeModel
from models.funds import encode_cursor
from resolvers.calls import SignedIn, query
from resolvers.errors import bad_input
from resolvers.funds.types import (
    AccountType,
    DepositInput,
    FundsPayload,
    TransactionConnection,
    TransactionEdge,
    TransactionNode,
    WithdrawInput,
)
from resolvers.mutations import mutation
from resolvers.permissions import IsAuthenticated, MayMoveMoney
from resolvers.relay import page_info


@strawberry.type
class FundsQuery:
    @query(IsAuthenticated, description="Cash and buying power.")
    async def account(self, call: SignedIn) -> AccountType:
        view = await call.services.funds.account(call.principal.user_id)
        return AccountType.from_view(view)

    @query(
        IsAuthenticated,
        description="Deposits and withdrawals, newest first. `first` is capped at 100.",
    )
    async def transactions(
        self,
        call: SignedIn,
        type: TransactionTypeModel | None = None,
        start_date: date | None = None,
        end_date: date | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> TransactionConnection:
        try:
            page = await call.services.funds.transactions(
                call.principal.user_id,
                kind=type,
                start_date=start_date,
                end_date=end_date,
                first=first,
                after=after,
            )
        except DomainError as exc:
            raise bad_input(exc) from None
        edges = [
            TransactionEdge(cursor=encode_cursor(t), node=TransactionNode.from_model(t))
            for t in page.items
        ]
        return TransactionConnection(
            edges=edges,
            page_info=page_info(edges, page.has_next_page),
        )


FUNDS_ERRORS = (
    ErrorCode.INVALID_AMOUNT,
    ErrorCode.UNSUPPORTED_CURRENCY,
    ErrorCode.INVALID_INPUT,
    ErrorCode.LIMIT_EXCEEDED,
    ErrorCode.IDEMPOTENCY_KEY_REUSED,
)


@strawberry.type
class FundsMutation:
    @mutation(
        MayMoveMoney,
        errors=(*FUNDS_ERRORS, ErrorCode.KYC_REQUIRED),
        payload=FundsPayload,
        audit="funds.deposit",
    )
    async def deposit(self, call: SignedIn, input: DepositInput) -> FundsPayload:
        txn = await call.services.funds.deposit(
            call.principal.user_id,
            input.amount,
            input.currency,
            input.payment_method,
            input.idempotency_key,
        )
        return FundsPayload(transaction=TransactionNode.from_model(txn))

    @mutation(
        MayMoveMoney,
        errors=(
            *FUNDS_ERRORS,
            ErrorCode.INSUFFICIENT_FUNDS,
            ErrorCode.KYC_REQUIRED,
            ErrorCode.ACCOUNT_FROZEN,
            *FRESH_PROOF_ERRORS,
        ),
        description="Withdraw cash. Needs a VERIFIED identity (KYC_REQUIRED); refused while "
        "a compliance case freezes the account (ACCOUNT_FROZEN). A withdrawal a fraud rule "
        "holds is still returned, PENDING, with `holdReason`.",
        payload=FundsPayload,
        audit="funds.withdrawal",
    )
    async def withdraw(self, call: SignedIn, input: WithdrawInput) -> FundsPayload:
        accounts = call.services.accounts
        proof = Proof(call.principal.session_id, input.current_password, input.otp)

        async def prove_new_method() -> None:
            user = await accounts.get_user(call.principal.user_id)
            assert user is not None  # signed in
            await accounts.require_fresh_proof(user, proof)

        txn = await call.services.funds.withdraw(
            call.principal.user_id,
            input.amount,
            input.currency,
            input.withdrawal_method,
            input.idempotency_key,
            prove_new_method=prove_new_method,
            new_device=await accounts.is_new_device(
                call.principal.user_id, call.principal.session_id
            ),
        )
        return FundsPayload(transaction=TransactionNode.from_model(txn))
