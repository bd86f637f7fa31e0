"""The FIX 4.4 session layer of one acceptor connection (we are ``BOURSE``, the partner its
SenderCompID).

Rules, as in the FIX session-level test cases:

- The first message must be a Logon (else the connection is dropped unanswered) naming
  TargetCompID ``BOURSE`` and a known partner with the right Password(554); a refused logon
  gets a Logout with the reason and the connection ends. One live session per partner.
- Sequence numbers are persisted (``models.fix``): an inbound number below the expected one
  without PossDupFlag ends the session (Logout "MsgSeqNum too low"); above it, we send one
  ResendRequest and keep the early messages until the gap is filled (by the resent messages
  or a SequenceReset-GapFill), then process them in order. ResetSeqNumFlag=Y on Logon starts
  both sides at 1.
- A ResendRequest from the partner is answered with the stored application messages
  (PossDupFlag=Y, OrigSendingTime) and SequenceReset-GapFill over everything else (session
  messages are never resent).
- Heartbeat every HeartBtInt when idle; a TestRequest when the partner has been silent for
  HeartBtInt plus a margin, and the connection is dropped if it stays silent as long again.
- A message that breaks FIX's rules (a required tag missing, a value out of range, a bad
  number, a wrong CompID) gets a Reject(35=3) and the session goes on (the message's sequence
  number is used up); an unsupported message type gets a BusinessMessageReject(35=j). A
  garbled frame (bad BodyLength or CheckSum) is dropped without an answer.
- Outgoing messages take their number, and are stored, under one lock, before they are
  written (``FixPartners.record_outbound``): what the partner may have missed is resendable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import simplefix
import structlog

from models.errors import DomainError
from models.fix import FixPartners, Partner
from workers.fix import codec as t
from workers.fix.orders import FixReject, Outgoing, Pairs

log = structlog.get_logger("workers.fix")

TARGET: Final = "BOURSE"
ADMIN_TYPES: Final = frozenset({"0", "1", "2", "3", "4", "5", "A"})
APP_TYPES: Final = frozenset({"D", "F", "H"})
MAX_HEARTBEAT: Final = 300
COMP_ID_PROBLEM, MSG_TYPE_INVALID = "9", "11"
SEQ_TOO_LOW = "MsgSeqNum too low"


class SessionEnd(Exception):
    """The session is over (logout, refused logon, fatal sequence or CompID problem)."""


@dataclass
class Timers:
    heartbeat: float = 30.0
    last_received: float = 0.0
    last_sent: float = 0.0
    test_request_at: float | None = None


AppHandler = Callable[[simplefix.FixMessage], Awaitable[list[Outgoing]]]
Authenticated = Callable[["Session", Partner], Awaitable[dict[str, AppHandler]]]


@dataclass
class Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    partners: FixPartners
    # Called once logged on: the application handlers by MsgType (and it may start tasks).
    on_logon: Authenticated
    active: dict[str, Session]
    logon_timeout: float = 10.0
    partner: Partner | None = None
    next_in: int = 1
    next_out: int = 1
    timers: Timers = field(default_factory=Timers)
    framer: t.Framer = field(default_factory=t.Framer)
    handlers: dict[str, AppHandler] = field(default_factory=dict)
    pending: dict[int, simplefix.FixMessage] = field(default_factory=dict)
    resend_requested_to: int = 0
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    logout_sent: bool = False
    inbox: list[simplefix.FixMessage] = field(default_factory=list)
    event_cursor: int = 0  # the last order event reported (the pump starts after it)
    # Inbound numbers already acted on out of order (the Logon, an early ResendRequest):
    # when the gap before them is filled they only advance the expected number.
    preprocessed: set[int] = field(default_factory=set)

    @property
    def comp_id(self) -> str:
        assert self.partner is not None
        return self.partner.sender_comp_id

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # ---- reading ----

    async def _read(self, within: float | None) -> simplefix.FixMessage | None:
        """The next verified message (None at end of stream)."""
        while not self.inbox:
            chunk = await asyncio.wait_for(self.reader.read(65536), within)
            if not chunk:
                return None
            for frame in self.framer.feed(chunk):
                message = t.parse(frame)
                if message is None:
                    self.framer.garbled += 1
                else:
                    self.inbox.append(message)
        self.timers.last_received = self._now()
        self.timers.test_request_at = None
        return self.inbox.pop(0)

    # ---- writing ----

    async def send(
        self, msg_type: str, pairs: Pairs, *, keep: bool = False, event_cursor: int | None = None
    ) -> None:
        """Number, store (application messages: ``keep``) and write one message."""
        async with self.send_lock:
            seq, at = self.next_out, datetime.now(UTC)
            data = t.build(msg_type, TARGET, self.comp_id, seq, pairs, at=at)
            parsed = t.parse(data) if keep else None
            body = t.body_of(parsed) if parsed is not None else None
            await self.partners.record_outbound(
                self.comp_id, seq, msg_type, body, event_cursor=event_cursor, sent_at=at
            )
            self.next_out = seq + 1
            await self._write(data)

    async def _write(self, data: bytes) -> None:
        self.writer.write(data)
        self.timers.last_sent = self._now()
        await self.writer.drain()

    async def _refuse_logon(self, sender: str, text: str) -> None:
        """A Logout answering a refused Logon (not numbered in any stored session)."""
        data = t.build("5", TARGET, sender or "UNKNOWN", 1, [(t.TEXT, text)])
        with contextlib.suppress(OSError):
            await self._write(data)

    async def reject(
        self, ref: simplefix.FixMessage, reason: str, tag: int | None, text: str
    ) -> None:
        await self.send(
            "3",
            [
                (t.REF_SEQ_NUM, t.text(ref, t.MSG_SEQ_NUM)),
                (t.REF_TAG_ID, tag),
                (t.REF_MSG_TYPE, t.text(ref, t.MSG_TYPE)),
                (t.SESSION_REJECT_REASON, reason),
                (t.TEXT, text),
            ],
        )

    async def logout(self, text: str | None = None) -> None:
        if not self.logout_sent:
            self.logout_sent = True
            await self.send("5", [(t.TEXT, text)])

    # ---- the session ----

    async def run(self) -> None:
        try:
            if await self._logon():
                await self._loop()
        except (SessionEnd, TimeoutError, ConnectionError) as exc:
            log.info("fix session ended", partner=getattr(self.partner, "sender_comp_id", None),
                     reason=repr(exc))  # fmt: skip
        finally:
            if self.partner is not None and self.active.get(self.comp_id) is self:
                del self.active[self.comp_id]
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _logon(self) -> bool:
        m = await self._read(self.logon_timeout)
        if m is None or t.text(m, t.MSG_TYPE) != "A":
            return False  # not FIX order entry: drop without an answer
        sender = t.text(m, t.SENDER_COMP_ID) or ""
        if t.text(m, t.TARGET_COMP_ID) != TARGET:
            await self._refuse_logon(sender, f"TargetCompID must be {TARGET}")
            return False
        peer = self.writer.get_extra_info("peername")
        try:
            partner = await self.partners.authenticate(
                sender, t.text(m, t.PASSWORD) or "", peer[0] if peer else None
            )
        except DomainError:  # ACCOUNT_LOCKED
            log.warning("fix logon locked", sender=sender)
            await self._refuse_logon(sender, "Logon refused: too many failed logons, try later")
            return False
        if partner is None:
            log.warning("fix logon refused", sender=sender)
            await self._refuse_logon(
                sender, "Logon refused: unknown SenderCompID or wrong password"
            )
            return False
        heartbeat = t.text(m, t.HEART_BT_INT) or ""
        seq_text = t.text(m, t.MSG_SEQ_NUM) or ""
        if not heartbeat.isdigit() or not 0 < int(heartbeat) <= MAX_HEARTBEAT:
            await self._refuse_logon(sender, f"HeartBtInt must be 1-{MAX_HEARTBEAT}")
            return False
        if not seq_text.isdigit():
            await self._refuse_logon(sender, "MsgSeqNum missing")
            return False
        if sender in self.active:
            await self._refuse_logon(sender, "A session for this SenderCompID is already active")
            return False
        self.partner = partner
        self.active[sender] = self
        reset = t.text(m, t.RESET_SEQ_NUM_FLAG) == "Y"
        state = await self.partners.session(sender, reset=reset)
        self.next_in, self.next_out = state.next_in, state.next_out
        self.event_cursor = state.event_cursor
        seq = int(seq_text)
        if seq < self.next_in:
            await self.logout(f"{SEQ_TOO_LOW}, expecting {self.next_in} but received {seq}")
            return False
        self.timers.heartbeat = float(heartbeat)
        reply: Pairs = [(t.ENCRYPT_METHOD, "0"), (t.HEART_BT_INT, heartbeat)]
        if reset:
            reply.append((t.RESET_SEQ_NUM_FLAG, "Y"))
        await self.send("A", reply)
        if seq > self.next_in:
            self.preprocessed.add(seq)
            self.pending[seq] = m
            await self._request_resend(seq)
        else:
            await self._advance(seq + 1)
        log.info("fix logon", partner=sender, next_in=self.next_in, next_out=self.next_out)
        self.handlers = await self.on_logon(self, partner)
        return True

    async def _request_resend(self, seen: int) -> None:
        if seen > self.resend_requested_to:
            self.resend_requested_to = seen
            await self.send("2", [(t.BEGIN_SEQ_NO, self.next_in), (t.END_SEQ_NO, 0)])

    async def _advance(self, next_in: int) -> None:
        self.next_in = next_in
        await self.partners.record_inbound(self.comp_id, next_in)

    async def _loop(self) -> None:
        watchdog = asyncio.create_task(self._heartbeats())
        try:
            while True:
                m = await self._read(None)
                if m is None:
                    raise SessionEnd("connection closed by the partner")
                await self._receive(m)
                while self.next_in in self.pending:
                    await self._receive(self.pending.pop(self.next_in))
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    async def _heartbeats(self) -> None:
        try:
            await self._beat()
        except (OSError, ConnectionError):
            pass
        except Exception:  # without heartbeats the session is not alive: end it
            log.exception("fix heartbeat failed", partner=self.comp_id)
            self.writer.close()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.timers.heartbeat / 4))
            now, hb = self._now(), self.timers.heartbeat
            if self.timers.test_request_at is not None:
                if now - self.timers.test_request_at > hb + 1:
                    log.warning("fix partner silent: disconnecting", partner=self.comp_id)
                    self.writer.close()
                    return
            elif now - self.timers.last_received > hb * 1.2 + 1:
                self.timers.test_request_at = now
                await self.send("1", [(t.TEST_REQ_ID, f"T{int(now * 1000)}")])
            if now - self.timers.last_sent >= hb:
                await self.send("0", [])

    async def _receive(self, m: simplefix.FixMessage) -> None:
        msg_type = t.text(m, t.MSG_TYPE) or ""
        seq_text = t.text(m, t.MSG_SEQ_NUM) or ""
        if not seq_text.isdigit():
            await self.logout("MsgSeqNum missing")
            raise SessionEnd("MsgSeqNum missing")
        seq = int(seq_text)
        if msg_type == "4" and t.text(m, t.GAP_FILL_FLAG) != "Y":
            await self._sequence_reset(m)  # Reset mode: MsgSeqNum is ignored
            return
        if seq < self.next_in:
            if t.text(m, t.POSS_DUP_FLAG) == "Y":
                return  # a duplicate we already processed
            await self.logout(f"{SEQ_TOO_LOW}, expecting {self.next_in} but received {seq}")
            raise SessionEnd(SEQ_TOO_LOW)
        if seq > self.next_in:
            if msg_type == "2" and seq not in self.preprocessed:
                # Answer a ResendRequest at once, even while our own gap is open.
                self.preprocessed.add(seq)
                await self._resend(m)
            elif msg_type == "5":
                await self.logout()
                raise SessionEnd("logout")
            self.pending.setdefault(seq, m)
            await self._request_resend(seq)
            return
        # seq == next_in
        if seq in self.preprocessed:
            self.preprocessed.discard(seq)
            await self._advance(seq + 1)
            return
        if not await self._header_ok(m):
            await self._advance(seq + 1)
            return
        if msg_type == "4":  # SequenceReset-GapFill
            new_seq = t.text(m, t.NEW_SEQ_NO) or ""
            if not new_seq.isdigit() or int(new_seq) <= seq:
                await self.reject(m, "5", t.NEW_SEQ_NO, "NewSeqNo must be above MsgSeqNum")
                await self._advance(seq + 1)
            else:
                await self._advance(int(new_seq))
            return
        await self._advance(seq + 1)
        await self._dispatch(msg_type, m)

    async def _header_ok(self, m: simplefix.FixMessage) -> bool:
        if t.text(m, t.SENDER_COMP_ID) != self.comp_id or t.text(m, t.TARGET_COMP_ID) != TARGET:
            await self.reject(m, COMP_ID_PROBLEM, t.SENDER_COMP_ID, "CompID problem")
            return False
        if not t.text(m, t.SENDING_TIME):
            await self.reject(m, "1", t.SENDING_TIME, "Required tag missing: 52")
            return False
        return True

    async def _dispatch(self, msg_type: str, m: simplefix.FixMessage) -> None:
        if msg_type == "0":
            return
        if msg_type == "1":
            await self.send("0", [(t.TEST_REQ_ID, t.text(m, t.TEST_REQ_ID))])
        elif msg_type == "2":
            await self._resend(m)
        elif msg_type == "3":
            log.info("fix reject received", partner=self.comp_id, text=t.text(m, t.TEXT))
        elif msg_type == "5":
            await self.logout()
            raise SessionEnd("logout")
        elif msg_type == "A":
            await self.reject(m, "5", t.MSG_TYPE, "Already logged on")
        elif msg_type in self.handlers:
            try:
                replies = await self.handlers[msg_type](m)
            except FixReject as exc:
                await self.reject(m, exc.reason, exc.tag, exc.text)
                return
            except Exception:  # the platform failed (database down…): say so, keep the session
                log.exception("fix application message failed", partner=self.comp_id)
                replies = [self._business_reject(m, msg_type, "4", "Application not available")]
            for reply in replies:
                await self.send(reply.msg_type, reply.pairs, keep=True)
        elif len(msg_type) in (1, 2) and msg_type.isalnum():
            reply = self._business_reject(m, msg_type, "3", f"Unsupported MsgType {msg_type}")
            await self.send(reply.msg_type, reply.pairs, keep=True)
        else:
            await self.reject(m, MSG_TYPE_INVALID, t.MSG_TYPE, "Invalid MsgType")

    @staticmethod
    def _business_reject(
        m: simplefix.FixMessage, msg_type: str, reason: str, text: str
    ) -> Outgoing:
        """BusinessMessageReject (35=j): 3 unsupported message type, 4 application not
        available."""
        return Outgoing(
            "j",
            [
                (t.REF_SEQ_NUM, t.text(m, t.MSG_SEQ_NUM)),
                (t.REF_MSG_TYPE, msg_type),
                (t.BUSINESS_REJECT_REF_ID, t.text(m, t.CL_ORD_ID)),
                (t.BUSINESS_REJECT_REASON, reason),
                (t.TEXT, text),
            ],
        )

    async def _sequence_reset(self, m: simplefix.FixMessage) -> None:
        new_seq = t.text(m, t.NEW_SEQ_NO) or ""
        if not new_seq.isdigit() or int(new_seq) < self.next_in:
            await self.reject(m, "5", t.NEW_SEQ_NO, "NewSeqNo may not go back")
            return
        await self._advance(int(new_seq))
        self.pending = {s: p for s, p in self.pending.items() if s >= self.next_in}

    async def _resend(self, m: simplefix.FixMessage) -> None:
        begin_text, end_text = t.text(m, t.BEGIN_SEQ_NO) or "", t.text(m, t.END_SEQ_NO) or ""
        if not (begin_text.isdigit() and end_text.isdigit()) or int(begin_text) < 1:
            await self.reject(m, "5", t.BEGIN_SEQ_NO, "BeginSeqNo/EndSeqNo incorrect")
            return
        async with self.send_lock:
            last = self.next_out - 1
            begin, end = int(begin_text), int(end_text)
            end = last if end == 0 or end > last else end
            stored = await self.partners.outbound(self.comp_id, begin, end)
            cursor = begin
            for seq, msg_type, body, sent_at in stored:
                if seq > cursor:
                    await self._gap_fill(cursor, seq)
                original = t.sending_time(sent_at)
                await self._write(
                    t.build(
                        msg_type,
                        TARGET,
                        self.comp_id,
                        seq,
                        body,
                        poss_dup=True,
                        orig_sending_time=original,
                    )
                )
                cursor = seq + 1
            if cursor <= end:
                await self._gap_fill(cursor, end + 1)

    async def _gap_fill(self, seq: int, new_seq: int) -> None:
        await self._write(
            t.build(
                "4",
                TARGET,
                self.comp_id,
                seq,
                [(t.GAP_FILL_FLAG, "Y"), (t.NEW_SEQ_NO, new_seq)],
                poss_dup=True,
            )
        )
