"""What the one mutation pattern (`resolvers.mutations.mutation`) costs per call.

Two mutations with the same body in one in-process schema: `hand`, written the way every
mutation was before (`permission_classes=[IsAuthenticated]`, `require_principal()`, its own
`try/except DomainError`), and `wrapped`, declared with `@mutation`. Calls alternate one by one
(hand, wrapped, wrapped, hand, …) through `schema.execute`, on the success path and on the
error path (a `DomainError` turned into the payload's errors); prints the median per call of
each and their ratio. No database, no network: only what differs between the two is measured.

    .venv/bin/python bench/mutation_wrapper.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "frontend-bff")]

import strawberry  # noqa: E402
from strawberry.types import Info  # noqa: E402

from bench.stats import median  # noqa: E402
from bourse.settings import Settings  # noqa: E402
from models.accounts import ClientInfo, Principal  # noqa: E402
from models.errors import DomainError, ErrorCode  # noqa: E402
from models.users import Role  # noqa: E402
from resolvers.calls import SignedIn  # noqa: E402
from resolvers.errors import UserError, unauthenticated, user_errors  # noqa: E402
from resolvers.mutations import mutation  # noqa: E402
from resolvers.permissions import IsAuthenticated  # noqa: E402


@strawberry.type
class EchoPayload:
    text: str | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def body(user_id: uuid.UUID, text: str) -> str:
    if text == "bad":
        raise DomainError.one(ErrorCode.INVALID_INPUT, "Bad text.", "text")
    return f"{user_id}:{text}"


@strawberry.type
class BenchMutation:
    @strawberry.mutation(permission_classes=[IsAuthenticated])  # type: ignore[untyped-decorator]
    async def hand(self, info: Info[Any, Any], text: str) -> EchoPayload:
        principal = await info.context.require_principal()
        try:
            result = body(principal.user_id, text)
        except DomainError as exc:
            return EchoPayload(errors=user_errors(exc))
        return EchoPayload(text=result)

    @mutation(IsAuthenticated, errors=[ErrorCode.INVALID_INPUT], payload=EchoPayload)
    async def wrapped(self, call: SignedIn, text: str) -> EchoPayload:
        return EchoPayload(text=body(call.principal.user_id, text))


@strawberry.type
class BenchQuery:
    ping: str = "pong"


class Unlimited:
    async def allow(self, user_id: str | None, ip: str | None) -> bool:
        return True


class BenchContext:
    def __init__(self, principal: Principal) -> None:
        self._principal = principal
        # Without Redis here: the rate limiter's round trip is in bench/orders_http.py's figures.
        self.services = SimpleNamespace(
            settings=Settings(env="production"), rate_limits=Unlimited()
        )
        self.client = ClientInfo(ip=None, user_agent=None)

    async def principal(self) -> Principal | None:
        return self._principal

    async def require_principal(self) -> Principal:
        if self._principal is None:
            raise unauthenticated()
        return self._principal


async def main(calls: int) -> None:
    schema = strawberry.Schema(query=BenchQuery, mutation=BenchMutation)
    principal = Principal(user_id=uuid.uuid4(), role=Role.CUSTOMER, session_id=uuid.uuid4())
    for text in ("ok", "bad"):
        documents = {
            name: f'mutation {{ {name}(text: "{text}") {{ text errors {{ code }} }} }}'
            for name in ("hand", "wrapped")
        }
        for document in documents.values():  # warm up (parser, validation, first calls)
            for _ in range(200):
                await schema.execute(document, context_value=BenchContext(principal))
        samples: dict[str, list[float]] = {"hand": [], "wrapped": []}
        for i in range(calls):
            order = ("hand", "wrapped") if i % 2 == 0 else ("wrapped", "hand")
            for name in order:
                context = BenchContext(principal)
                start = time.perf_counter()
                result = await schema.execute(documents[name], context_value=context)
                samples[name].append(time.perf_counter() - start)
                assert result.errors is None, result.errors
        hand, wrapped = median(samples["hand"]) * 1e6, median(samples["wrapped"]) * 1e6
        path = "success" if text == "ok" else "DomainError"
        print(
            f"{path:>11}: hand-written {hand:7.1f} µs, @mutation {wrapped:7.1f} µs "
            f"(median of {calls} calls each), ratio {wrapped / hand:.3f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    asyncio.run(main(parser.parse_args().calls))
