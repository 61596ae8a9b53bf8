"""The sans-IO framing core: every sample whole, byte by byte, with trailing bytes, and every kind of broken frame."""

from __future__ import annotations

import random

import pytest

from singbox_agent.netconf.framing import EOM, Framer, FramingError, MessageTooBig

MESSAGES = [b"<rpc/>", b"x" * 70000, "<a>\u00e9\u4e2d</a>".encode(), b"]]>]]", b"\n#5\n", b"\n##\n inside"]


def chunked(message: bytes, sizes: list[int]) -> bytes:
    out = b""
    pos = 0
    for size in sizes:
        part = message[pos : pos + size]
        if part:
            out += b"\n#%d\n" % len(part) + part
        pos += size
    if pos < len(message):
        out += b"\n#%d\n" % (len(message) - pos) + message[pos:]
    return out + b"\n##\n"


def drain(framer: Framer) -> list[bytes]:
    out = []
    while (m := framer.next_message()) is not None:
        out.append(m)
    return out


@pytest.mark.parametrize("step", [None, 1, 7, 4096])
def test_eom_messages(step: int | None) -> None:
    msgs = [m for m in MESSAGES if EOM not in m and not m.endswith(b"]]>]]")]
    stream = b"".join(m + EOM for m in msgs) + b"<trailing"
    framer = Framer()
    got: list[bytes] = []
    if step is None:
        framer.receive_data(stream)
        got = drain(framer)
    else:
        for i in range(0, len(stream), step):
            framer.receive_data(stream[i : i + step])
            got += drain(framer)
    assert got == msgs


@pytest.mark.parametrize("step", [None, 1, 3, 1000])
def test_chunked_messages(step: int | None) -> None:
    rng = random.Random(7)
    stream = b""
    for m in MESSAGES:
        stream += chunked(m, [rng.randint(1, 50) for _ in range(rng.randint(0, 4))])
    stream += b"\n#3\nabc"  # an incomplete trailing message stays pending
    framer = Framer()
    framer.switch_to_chunked()
    got: list[bytes] = []
    if step is None:
        framer.receive_data(stream)
        got = drain(framer)
    else:
        for i in range(0, len(stream), step):
            framer.receive_data(stream[i : i + step])
            got += drain(framer)
    assert got == MESSAGES


def test_switch_after_hello_reinterprets_buffer() -> None:
    framer = Framer()
    framer.receive_data(b"<hello/>" + EOM + b"\n#4\n<rpc\n##\n")
    assert framer.next_message() == b"<hello/>"
    framer.switch_to_chunked()
    assert framer.next_message() == b"<rpc"


@pytest.mark.parametrize(
    "bad",
    [b"#4\nabcd\n##\n", b"\n#0\n", b"\n#-1\n", b"\n#01\nx", b"\n##\n", b"\n#abc\n", b"\n#12345678901\n",
     b"\n#4294967296\n", b"\n#2\nabc\n##\n", b"\n# 1\nx\n##\n", b"\r\n#1\nx\n##\n", b"xyz", b"\n#1\nx\n#\n"],
)
def test_broken_chunked_framing_is_fatal(bad: bytes) -> None:
    framer = Framer()
    framer.switch_to_chunked()
    with pytest.raises(FramingError):
        framer.receive_data(bad)
        for _ in range(10):
            if framer.next_message() is None:
                framer.receive_data(b"\n")  # more bytes never repair a broken frame
    with pytest.raises(FramingError):
        framer.next_message()


@pytest.mark.parametrize("step", [1, 7, 1000])
def test_too_big_message_is_skipped_and_the_next_one_read(step: int) -> None:
    """A message over the limit is dropped whole and reported with its head (for the message-id); the stream goes
    on — in both framings, whatever the read sizes."""
    big = b'<rpc message-id="big">' + b"x" * 300 + b"</rpc>"
    small = b'<rpc message-id="small"/>'
    for chunked in (False, True):
        framer = Framer(max_message=100)
        sender = Framer()
        if chunked:
            framer.switch_to_chunked()
            sender.switch_to_chunked()
            wire = b"\n#60\n" + big[:60] + b"\n#" + str(len(big) - 60).encode() + b"\n" + big[60:] + b"\n##\n"
            wire += sender.frame(small)
        else:
            wire = big + EOM + small + EOM
        seen: list[bytes] = []
        too_big: list[MessageTooBig] = []
        for i in range(0, len(wire), step):
            framer.receive_data(wire[i : i + step])
            while True:
                try:
                    message = framer.next_message()
                except MessageTooBig as exc:
                    too_big.append(exc)
                    continue
                if message is None:
                    break
                seen.append(message)
        assert seen == [small], (chunked, seen)
        assert len(too_big) == 1 and too_big[0].head.startswith(b'<rpc message-id="big">')
        assert too_big[0].size >= 300


def test_frame_output_round_trips() -> None:
    out = Framer()
    out.switch_to_chunked()
    inp = Framer()
    inp.switch_to_chunked()
    for m in MESSAGES:
        inp.receive_data(out.frame(m))
    assert drain(inp) == MESSAGES
    with pytest.raises(ValueError):
        out.frame(b"")


@pytest.mark.parametrize("chunked", [False, True])
def test_an_idle_session_keeps_no_copy_of_its_last_message(chunked: bool) -> None:
    """Once a message is taken and nothing follows it, the framer holds none of its bytes (it kept a buffer as large
    as the message until the next input: 5 MB here, 10 MB for the 10 MB edit of test_edit_config)."""
    import gc
    import tracemalloc

    message = b"<rpc>" + b"x" * (5 << 20) + b"</rpc>"
    framer = Framer()
    if chunked:
        framer.switch_to_chunked()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        framed = framer.frame(message)
        for at in range(0, len(framed), 1 << 16):  # as an SSH channel delivers it
            framer.receive_data(framed[at:at + (1 << 16)])
        assert framer.next_message() == message
        del framed
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 64 * 1024, kept
    framer.receive_data(framer.frame(b"<rpc/>"))  # and the next one is read as before
    assert framer.next_message() == b"<rpc/>"
