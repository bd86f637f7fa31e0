"""Framing and checksums of the gateway's codec (pure: no platform needed)."""

from __future__ import annotations

import simplefix

from workers.fix.codec import Framer, body_of, build, checksum, parse

SOH = b"\x01"


def message(seq: int = 1, **fields: str) -> bytes:
    pairs: list[tuple[int, object]] = [(int(k.lstrip("t")), v) for k, v in fields.items()]
    return build("0", "ACME", "BOURSE", seq, pairs)


def test_build_sets_length_and_checksum_a_parser_accepts() -> None:
    data = message(7, t112="abc")
    head, _, rest = data.partition(SOH + b"9=")
    length = int(rest.split(SOH)[0])
    body_start = len(head) + 3 + len(str(length)) + 1
    assert data[body_start:].startswith(b"35=0")
    assert len(data) - body_start - 7 == length  # BodyLength counts up to the checksum field
    assert data.endswith(f"10={checksum(data[:-7]):03d}".encode() + SOH)
    parser = simplefix.FixParser()
    parser.append_buffer(data)
    m = parser.get_message()
    assert m is not None
    assert (m.get(34), m.get(112), m.get(49), m.get(56)) == (b"7", b"abc", b"ACME", b"BOURSE")


def test_frames_split_anywhere_and_run_together_come_out_whole() -> None:
    messages = [message(1), message(2, t112="x"), message(3)]
    stream = b"".join(messages)
    for cut in range(1, len(stream)):
        framer = Framer()
        frames = framer.feed(stream[:cut]) + framer.feed(stream[cut:])
        assert frames == messages
        assert framer.garbled == 0


def test_garbled_frames_are_dropped_and_the_next_one_is_found() -> None:
    good = message(5)
    bad_checksum = message(2)[:-4] + b"000" + SOH
    bad_length = message(3).replace(b"9=", b"9=9", 1)
    framer = Framer()
    frames = framer.feed(b"junk" + bad_checksum + bad_length + good)
    assert frames == [good]
    assert framer.garbled >= 2
    # Another protocol altogether is dropped without waiting for more bytes.
    assert Framer().feed(b"8=HTTP/1.1" + SOH + b"9=5" + SOH + b"hello" + good) == [good]


def test_a_frame_that_is_not_tag_value_parses_to_none() -> None:
    body = b"35=0" + SOH + b"abc=1" + SOH
    head = b"8=FIX.4.4" + SOH + f"9={len(body)}".encode() + SOH
    frame = head + body + f"10={checksum(head + body):03d}".encode() + SOH
    [verified] = Framer().feed(frame)
    assert parse(verified) is None


def test_the_stored_body_leaves_the_header_out() -> None:
    data = message(9, t112="ping")
    m = parse(data)
    assert m is not None
    assert body_of(m) == b"112=ping" + SOH
    # A resend rebuilds the same body under a new header.
    again = build("0", "ACME", "BOURSE", 9, body_of(m), poss_dup=True)
    resent = parse(again)
    assert resent is not None
    assert (resent.get(112), resent.get(43), resent.get(34)) == (b"ping", b"Y", b"9")
