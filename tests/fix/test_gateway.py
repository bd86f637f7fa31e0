"""The FIX 4.4 gateway against the real platform (API, shards, settlement, liquidity provider
and ``python -m workers.fix``), driven by a simplefix initiator: logon, orders that fill
against the liquidity provider, ExecutionReports, sequence gaps and resends across a
disconnect, Rejects that do not end the session, refused logons."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import simplefix
from sqlalchemy import select

from models.fix import FixPartner
from models.services import Services
from tests.fix.client import FixClient, new_order, text, transact_time
from tests.fix.conftest import PASSWORD, fix_customer
from tests.orders.conftest import symbol
from tests.orders.helpers import CANCEL, get_order, list_asset, wait_book
from tests.support.stack import Stack


def port(stack: Stack) -> int:
    assert stack.settings.fix_port
    return stack.settings.fix_port


def is_er(exec_type: str, cl_ord_id: str | None = None):  # type: ignore[no-untyped-def]
    def want(m: simplefix.FixMessage) -> bool:
        return (
            text(m, 35) == "8"
            and text(m, 150) == exec_type
            and (cl_ord_id is None or text(m, 11) == cl_ord_id)
        )

    return want


def of_type(msg_type: str):  # type: ignore[no-untyped-def]
    return lambda m: text(m, 35) == msg_type


async def test_wrong_password_and_unknown_partner_are_refused(
    stack: Stack, stack_services: Services
) -> None:
    async with stack.client() as api:
        customer = await fix_customer(api, stack_services, "0")
    for sender, password in ((customer.comp_id, "wrong-password-123"), ("NOBODY", PASSWORD)):
        client = FixClient("127.0.0.1", port(stack), sender)
        answer = await client.logon(password, reset=True)
        assert text(answer, 35) == "5"
        assert "refused" in (text(answer, 58) or "")
        assert await client.recv() is None  # and the connection is closed
        await client.close()
    # The right password still works (a refusal did not lock or break the partner).
    client = FixClient("127.0.0.1", port(stack), customer.comp_id)
    answer = await client.logon(PASSWORD, reset=True)
    assert text(answer, 35) == "A"
    assert text(answer, 141) == "Y"
    await client.close()


async def test_repeated_wrong_passwords_lock_the_partner_out(
    stack: Stack, stack_services: Services
) -> None:
    async with stack.client() as api:
        guessed = await fix_customer(api, stack_services, "0")
        other = await fix_customer(api, stack_services, "0")
    limit = stack.settings.login_max_failures

    async def logon(comp_id: str, password: str) -> simplefix.FixMessage:
        client = FixClient("127.0.0.1", port(stack), comp_id)
        try:
            return await client.logon(password, reset=True)
        finally:
            await client.close()

    # Concurrent guesses: however many race, only `limit` reach the password check.
    answers = await asyncio.gather(
        *(logon(guessed.comp_id, f"guess-{i}-password") for i in range(limit + 3))
    )
    assert all(text(a, 35) == "5" for a in answers)
    locked = await logon(guessed.comp_id, PASSWORD)  # the right password, too late
    assert text(locked, 35) == "5"
    assert "too many" in (text(locked, 58) or "")
    assert text(await logon(other.comp_id, PASSWORD), 35) == "A"  # others are not locked


async def test_market_order_fills_against_the_liquidity_provider(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("FX")
    await list_asset(stack_services, sym, "100.00", liquidity=True)
    await wait_book(stack_services, sym)
    async with stack.client() as api:
        customer = await fix_customer(api, stack_services)
        client = FixClient("127.0.0.1", port(stack), customer.comp_id)
        assert text(await client.logon(PASSWORD, reset=True), 35) == "A"
        client.count(client.received[-1])
        await client.send("D", new_order("buy-1", sym, "1", "2", "1", t59="3"))  # market IOC
        new = await client.expect(is_er("0", "buy-1"))
        order_id = text(new, 37)
        assert order_id
        assert (text(new, 39), text(new, 55), text(new, 54)) == ("0", sym, "1")
        fill = await client.expect(is_er("F", "buy-1"))
        assert text(fill, 37) == order_id
        assert (text(fill, 39), text(fill, 32), text(fill, 31)) == ("2", "2", "100.05")
        assert (text(fill, 14), text(fill, 151), text(fill, 6)) == ("2", "0", "100.05")
        # The platform agrees: it is the same order GraphQL shows, executed.
        order = await get_order(api, customer.token, order_id)
        assert order is not None
        assert order["status"] == "EXECUTED"
        assert order["clientOrderId"] == "buy-1"
        assert order["filledQuantity"] == "2"
        # OrderStatusRequest answers from the same order.
        await client.send("H", [(11, "buy-1"), (55, sym), (54, "1")])
        status = await client.expect(is_er("I", "buy-1"))
        assert (text(status, 37), text(status, 39), text(status, 14)) == (order_id, "2", "2")
        # Every ExecID is distinct.
        reports = [m for m in client.received if text(m, 35) == "8"]
        assert len({text(m, 17) for m in reports}) == len(reports)
        await client.send("5", [])
        assert text(await client.expect(of_type("5")), 35) == "5"
        await client.close()


async def test_platform_refusals_are_rejected_execution_reports(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("FR")
    await list_asset(stack_services, sym, "50.00")
    async with stack.client() as api:
        customer = await fix_customer(api, stack_services, "100")
    client = FixClient("127.0.0.1", port(stack), customer.comp_id)
    await client.logon(PASSWORD, reset=True)
    await client.send("D", new_order("nope-1", "NOSUCH", "1", "1", "2", t44="10", t59="1"))
    rejected = await client.expect(is_er("8", "nope-1"))
    assert (text(rejected, 39), text(rejected, 103)) == ("8", "1")
    assert (text(rejected, 58) or "").startswith("UNKNOWN_ASSET")
    # $100 does not buy 10 shares at $40.
    await client.send("D", new_order("big-1", sym, "1", "10", "2", t44="40.00", t59="1"))
    rejected = await client.expect(is_er("8", "big-1"))
    assert (text(rejected, 58) or "").startswith("INSUFFICIENT_BUYING_POWER")
    # A ClOrdID used twice is the platform's DUPLICATE_CLIENT_ORDER_ID.
    await client.send("D", new_order("rest-1", sym, "1", "1", "2", t44="40.00", t59="1"))
    await client.expect(is_er("0", "rest-1"))
    await client.send("D", new_order("rest-1", sym, "1", "1", "2", t44="40.00", t59="1"))
    duplicate = await client.expect(is_er("8", "rest-1"))
    assert (text(duplicate, 103), (text(duplicate, 58) or "")[:25]) == (
        "6",
        "DUPLICATE_CLIENT_ORDER_ID",
    )
    # Cancel it through FIX: Canceled names the cancel's ClOrdID and the original.
    await client.send(
        "F", [(41, "rest-1"), (11, "cxl-1"), (55, sym), (54, "1"), (60, transact_time())]
    )
    cancelled = await client.expect(is_er("4", "cxl-1"))
    assert (text(cancelled, 41), text(cancelled, 39)) == ("rest-1", "4")
    # Cancelling it again, or an unknown order: OrderCancelReject.
    await client.send(
        "F", [(41, "rest-1"), (11, "cxl-2"), (55, sym), (54, "1"), (60, transact_time())]
    )
    again = await client.expect(of_type("9"))
    assert (text(again, 11), text(again, 102), text(again, 434)) == ("cxl-2", "0", "1")
    await client.send(
        "F", [(41, "ghost"), (11, "cxl-3"), (55, sym), (54, "1"), (60, transact_time())]
    )
    ghost = await client.expect(of_type("9"))
    assert (text(ghost, 11), text(ghost, 102)) == ("cxl-3", "1")
    await client.close()


async def test_malformed_messages_get_a_reject_and_the_session_goes_on(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("FM")
    await list_asset(stack_services, sym, "20.00")
    async with stack.client() as api:
        customer = await fix_customer(api, stack_services, "1000")
    client = FixClient("127.0.0.1", port(stack), customer.comp_id)
    await client.logon(PASSWORD, reset=True)
    pairs = [p for p in new_order("m-1", sym, "1", "1", "2", t44="19.00") if p[0] != 54]
    seq = await client.send("D", pairs)  # no Side
    reject = await client.expect(of_type("3"))
    assert (text(reject, 45), text(reject, 371), text(reject, 373)) == (str(seq), "54", "1")
    await client.send("D", new_order("m-2", sym, "1", "1", "Z"))  # no such OrdType
    reject = await client.expect(of_type("3"))
    assert (text(reject, 371), text(reject, 373)) == ("40", "5")
    await client.send("D", new_order("m-3", sym, "1", "1.5e3", "2", t44="19.00"))  # not a FIX float
    reject = await client.expect(of_type("3"))
    assert (text(reject, 371), text(reject, 373)) == ("38", "6")
    await client.send("R", [(131, "q-1")])  # QuoteRequest: not served here
    business = await client.expect(of_type("j"))
    assert (text(business, 372), text(business, 380)) == ("R", "3")
    # A garbled frame (bad checksum) is dropped unanswered; its number is then a gap that
    # the gateway asks for, and a SequenceReset-GapFill closes it.
    garbled = client.encode("1", [(112, "lost")])
    await client.send_raw(garbled[:-4] + b"000\x01")
    lost = client.next_out
    client.next_out += 1
    await client.send("1", [(112, "after-gap")])
    resend = await client.expect(of_type("2"))
    assert (text(resend, 7), text(resend, 16)) == (str(lost), "0")
    await client.send("4", [(123, "Y"), (36, lost + 1)], seq=lost, poss_dup=True)
    heartbeat = await client.expect(lambda m: text(m, 35) == "0" and text(m, 112) is not None)
    assert text(heartbeat, 112) == "after-gap"
    # Still logged on: a valid order is taken.
    await client.send("D", new_order("m-4", sym, "1", "1", "2", t44="19.00", t59="1"))
    await client.expect(is_er("0", "m-4"))
    await client.close()


async def test_disconnect_with_a_gap_resends_missed_reports_and_sends_later_events(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("FG")
    await list_asset(stack_services, sym, "30.00")
    async with stack.client() as api:
        customer = await fix_customer(api, stack_services, "1000")
        client = FixClient("127.0.0.1", port(stack), customer.comp_id)
        await client.logon(PASSWORD, reset=True)
        client.count(client.received[-1])
        await client.send("D", new_order("g-1", sym, "1", "3", "2", t44="25.00", t59="1"))
        new = await client.expect(is_er("0", "g-1"))
        order_id = text(new, 37)
        assert order_id
        # The report is "lost": the initiator never counted it, then the line drops.
        client.next_in = int(text(new, 34) or 0)
        await client.close()
        # While the partner is away, the customer cancels the order in the web app.
        cancelled = await api.gql(CANCEL, {"id": order_id}, token=customer.token)
        assert cancelled["data"]["cancelOrder"]["errors"] == []
        await asyncio.sleep(0.3)  # a reconnect a moment later, as a partner's engine would

        logon = await client.logon(PASSWORD)  # no reset: the sequence numbers carry on
        assert text(logon, 35) == "A"
        assert int(text(logon, 34) or 0) > client.next_in  # the gap is visible at once
        await client.send("2", [(7, client.next_in), (16, 0)])
        # Two things arrive, in either order: the lost report again (PossDupFlag=Y, its
        # original number) and the cancel that happened while away (a new report).
        resent = away = None
        while resent is None or away is None:
            m = await client.expect(of_type("8"))
            if text(m, 43) == "Y" and text(m, 150) == "0":
                resent = m
            elif text(m, 43) is None and text(m, 150) == "4":
                away = m
        assert (text(resent, 11), text(resent, 17)) == ("g-1", text(new, 17))
        assert text(resent, 34) == text(new, 34)
        assert text(resent, 122) == text(new, 52)  # OrigSendingTime: when it was first sent
        assert (text(away, 11), text(away, 37), text(away, 39)) == ("g-1", order_id, "4")
        # Nothing was skipped: the counted sequence is whole up to the last message.
        assert client.next_in == int(text(away, 34) or 0) + 1
        # A message numbered below what the gateway expects ends the session.
        await client.send("0", [], seq=1)
        logout = await client.expect(of_type("5"))
        assert "too low" in (text(logout, 58) or "")
        await client.close()


async def test_heartbeats_and_test_requests(stack: Stack, stack_services: Services) -> None:
    async with stack.client() as api:
        customer = await fix_customer(api, stack_services, "0")
    client = FixClient("127.0.0.1", port(stack), customer.comp_id)
    await client.logon(PASSWORD, heartbeat=1, reset=True)
    await client.send("1", [(112, "ping-1")])
    pong = await client.expect(lambda m: text(m, 112) == "ping-1")
    assert text(pong, 35) == "0"
    # Silent for longer than HeartBtInt: a Heartbeat, then the gateway's TestRequest.
    await client.expect(of_type("0"), skip=())
    test_request = await client.expect(of_type("1"), timeout=10)
    await client.send("0", [(112, text(test_request, 112))])
    # SequenceReset in Reset mode moves the expected number whatever its own MsgSeqNum says.
    new_seq = client.next_out + 10
    await client.send("4", [(36, new_seq)])
    client.next_out = new_seq
    await client.send("1", [(112, "after-reset")])
    pong = await client.expect(lambda m: text(m, 112) == "after-reset" or text(m, 35) == "2")
    assert text(pong, 35) == "0"  # answered, no ResendRequest
    await client.close()


async def test_one_live_session_per_partner(stack: Stack, stack_services: Services) -> None:
    async with stack.client() as api:
        customer = await fix_customer(api, stack_services, "0")
    clients = [FixClient("127.0.0.1", port(stack), customer.comp_id) for _ in range(4)]
    answers = await asyncio.gather(*(c.logon(PASSWORD, reset=True) for c in clients))
    assert sorted(text(a, 35) or "" for a in answers) == ["5", "5", "5", "A"]
    for c in clients:
        await c.close()


async def test_cli_adds_a_partner(stack: Stack, stack_services: Services) -> None:
    async with stack.client() as api:
        customer = await fix_customer(api, stack_services, "0")
    comp_id = f"CLI{uuid.uuid4().hex[:8].upper()}"
    argv = [
        *(sys.executable, "-m", "bourse.app.cli", "fix", "add-partner"),
        *("--sender-comp-id", comp_id, "--email", customer.email, "--password", PASSWORD),
    ]
    done = await asyncio.to_thread(
        subprocess.run, argv, env=stack.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    async with stack_services.sessionmaker() as s:
        row = await s.scalar(select(FixPartner).where(FixPartner.sender_comp_id == comp_id))
    assert row is not None
    assert row.user_id == customer.user_id
    assert PASSWORD not in row.password_hash
    assert row.password_hash.startswith("$argon2id$")
    # The same SenderCompID twice, or a weak password: refused with a reason.
    again = await asyncio.to_thread(
        subprocess.run, argv, env=stack.env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 1
    assert "taken" in again.stderr
    client = FixClient("127.0.0.1", port(stack), comp_id)
    assert text(await client.logon(PASSWORD, reset=True), 35) == "A"
    await client.close()
