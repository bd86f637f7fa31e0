"""FIX 4.4 on the wire: framing, checksums, and building messages (codec: ``simplefix``).

Why simplefix and our own session layer rather than QuickFIX: ``quickfix`` on PyPI is a C++
source build (no wheel here), and its ``quickfix-ssl`` wheel keeps sequence numbers and
messages in its own file or ODBC stores and runs its own threads; the gateway needs them in
PostgreSQL beside the order-event cursor (one transaction per outgoing message), on the
platform's asyncio loop. simplefix is a small pure-Python tag=value codec with no opinions
about sessions, so the session rules (``workers.fix.session``) are ours, written and tested
against the FIX 4.4 session-level test cases.

simplefix's parser does not check BodyLength(9) or CheckSum(10), so ``Framer`` frames by
BodyLength itself and verifies both before a frame is parsed: a garbled message is dropped
(the FIX rule: no Reject, the sequence gap that follows brings a resend).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import simplefix
from simplefix.errors import ParsingError

BEGIN_STRING: Final = b"FIX.4.4"
SOH: Final = b"\x01"
MAX_BODY_LENGTH: Final = 64 * 1024

# Tags used by the gateway (FIX 4.4 names).
AVG_PX, BEGIN_SEQ_NO, BEGIN_STRING_TAG, BODY_LENGTH, CHECKSUM = 6, 7, 8, 9, 10
CL_ORD_ID, CUM_QTY, END_SEQ_NO, EXEC_ID, LAST_PX, LAST_QTY = 11, 14, 16, 17, 31, 32
MSG_SEQ_NUM, MSG_TYPE, NEW_SEQ_NO, ORDER_ID, ORDER_QTY, ORD_STATUS = 34, 35, 36, 37, 38, 39
ORD_TYPE, ORIG_CL_ORD_ID, POSS_DUP_FLAG, PRICE, REF_SEQ_NUM = 40, 41, 43, 44, 45
SENDER_COMP_ID, SENDING_TIME, SIDE, SYMBOL, TARGET_COMP_ID, TEXT = 49, 52, 54, 55, 56, 58
TIME_IN_FORCE, TRANSACT_TIME, ORIG_SENDING_TIME, ENCRYPT_METHOD, STOP_PX = 59, 60, 122, 98, 99
HEART_BT_INT, TEST_REQ_ID, GAP_FILL_FLAG, RESET_SEQ_NUM_FLAG = 108, 112, 123, 141
ORD_REJ_REASON, CXL_REJ_REASON, EXEC_TYPE, LEAVES_QTY, CASH_ORDER_QTY = 103, 102, 150, 151, 152
REF_TAG_ID, REF_MSG_TYPE, SESSION_REJECT_REASON = 371, 372, 373
BUSINESS_REJECT_REF_ID, BUSINESS_REJECT_REASON = 379, 380
CXL_REJ_RESPONSE_TO, USERNAME, PASSWORD = 434, 553, 554

HEADER_TAGS: Final = frozenset(
    {BEGIN_STRING_TAG, BODY_LENGTH, MSG_TYPE, SENDER_COMP_ID, TARGET_COMP_ID, MSG_SEQ_NUM,
     SENDING_TIME, POSS_DUP_FLAG, ORIG_SENDING_TIME, CHECKSUM}
)  # fmt: skip


def checksum(data: bytes) -> int:
    return sum(data) % 256


@dataclass
class Framer:
    """Bytes in, whole verified frames out. ``garbled`` counts frames dropped."""

    buffer: bytes = b""
    garbled: int = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        frames: list[bytes] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            if frame:
                frames.append(frame)

    def _next(self) -> bytes | None:
        start = self.buffer.find(b"8=")
        if start < 0:
            self.buffer = self.buffer[-1:] if self.buffer.endswith(b"8") else b""
            return None
        self.buffer = self.buffer[start:]
        head_end = self.buffer.find(SOH)
        if head_end < 0:
            return None if len(self.buffer) < 32 else self._skip()
        if self.buffer[2:head_end] != BEGIN_STRING:
            return self._skip()
        length_start = head_end + 1
        length_end = self.buffer.find(SOH, length_start)
        if length_end < 0:
            return None if len(self.buffer) - length_start < 12 else self._skip()
        field = self.buffer[length_start:length_end]
        if not field.startswith(b"9=") or not field[2:].isdigit():
            return self._skip()
        body_length = int(field[2:])
        if body_length > MAX_BODY_LENGTH:
            return self._skip()
        body_end = length_end + 1 + body_length
        total = body_end + 7  # "10=NNN\x01"
        if len(self.buffer) < total:
            # A wrong (too large) BodyLength would swallow the messages after it: when the
            # next message has started already, this one is garbled.
            if self.buffer.find(SOH + b"8=" + BEGIN_STRING + SOH, length_end) >= 0:
                return self._skip()
            return None
        frame, trailer = self.buffer[:body_end], self.buffer[body_end:total]
        if not (trailer.startswith(b"10=") and trailer.endswith(SOH) and trailer[3:6].isdigit()):
            return self._skip()
        self.buffer = self.buffer[total:]
        if int(trailer[3:6]) != checksum(frame):
            self.garbled += 1
            return b""
        return frame + trailer

    def _skip(self) -> bytes:
        """Drop this "8=" and look for the next message start."""
        self.garbled += 1
        self.buffer = self.buffer[2:]
        return b""


def parse(frame: bytes) -> simplefix.FixMessage | None:
    """A verified frame (``Framer``) as a message; None when it is not tag=value at all (a
    tag that is not a number): garbled, dropped like a bad checksum."""
    parser = simplefix.FixParser()
    parser.set_allow_empty_values(True)  # an empty value is the session's to reject
    parser.append_buffer(frame)
    try:
        message = parser.get_message()
    except ParsingError:
        return None
    return message


def text(message: simplefix.FixMessage, tag: int) -> str | None:
    raw = message.get(tag)
    if raw is None:
        return None
    try:
        return bytes(raw).decode("ascii")
    except UnicodeDecodeError:
        return None


def sending_time(at: datetime | None = None) -> bytes:
    """UTCTimestamp with milliseconds (``YYYYMMDD-HH:MM:SS.sss``)."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    return at.strftime("%Y%m%d-%H:%M:%S.%f")[:-3].encode()


def body_of(message: simplefix.FixMessage) -> bytes:
    """The fields after the standard header, as stored for a resend (``tag=value\\x01``…)."""
    out = b""
    for tag, value in message.pairs:
        if int(tag) not in HEADER_TAGS:
            out += bytes(tag) + b"=" + bytes(value) + SOH
    return out


def build(
    msg_type: str,
    sender: str,
    target: str,
    seq_num: int,
    body: bytes | list[tuple[int, object]],
    *,
    poss_dup: bool = False,
    orig_sending_time: bytes | None = None,
    at: datetime | None = None,
) -> bytes:
    """Encode one message: the standard header, ``body`` (stored bytes or pairs), trailer."""
    m = simplefix.FixMessage()
    m.append_pair(BEGIN_STRING_TAG, BEGIN_STRING, header=True)
    m.append_pair(MSG_TYPE, msg_type, header=True)
    m.append_pair(SENDER_COMP_ID, sender, header=True)
    m.append_pair(TARGET_COMP_ID, target, header=True)
    m.append_pair(MSG_SEQ_NUM, seq_num, header=True)
    m.append_pair(SENDING_TIME, sending_time(at), header=True)
    if poss_dup:
        m.append_pair(POSS_DUP_FLAG, "Y", header=True)
        m.append_pair(ORIG_SENDING_TIME, orig_sending_time or sending_time(), header=True)
    if isinstance(body, bytes):
        for field in body.split(SOH):
            if field:
                raw_tag, _, raw_value = field.partition(b"=")
                m.append_pair(int(raw_tag), raw_value)
    else:
        for tag, value in body:
            if value is not None:
                m.append_pair(tag, value)
    encoded: bytes = m.encode()
    return encoded
