"""RFC 6242 message framing as a sans-IO state machine: bytes in, whole messages (or a framing error) out.

Two framings: base:1.0 end-of-message (`]]>]]>` after each message) used for the hellos, and base:1.1 chunked
(`\\n#<size>\\n<data>` ... `\\n##\\n`) once both peers announced base:1.1. No I/O here: the SSH adapter feeds
`receive_data`, drains `next_message`, and sends what `frame` returns; tests feed the same core byte by byte.

A framing error is fatal (RFC 6242 section 4.2: the peer MUST terminate the session), so after one the framer
refuses further input. A message larger than `max_message` is not: it is read to its end without being kept (its
first `HEAD` bytes are, for the message-id of the reply) and reported as `MessageTooBig`, so the session answers
`too-big` and goes on.
"""

from __future__ import annotations

import enum
import re

EOM = b"]]>]]>"
DEFAULT_MAX_MESSAGE = 256 * 1024 * 1024
HEAD = 4096  # bytes kept of a message that is too big
_MAX_CHUNK = 4294967295
_CHUNK_HEADER = re.compile(rb"\n#([1-9][0-9]{0,9})\n")
_HEADER_MAX = 13  # "\n#" + 10 digits + "\n"


class Framing(enum.Enum):
    EOM = "1.0"
    CHUNKED = "1.1"


class FramingError(Exception):
    """The peer broke RFC 6242 framing; the session must be closed."""


class MessageTooBig(Exception):
    """A whole message larger than the limit went by and was dropped; not fatal, the next one may follow."""

    def __init__(self, size: int, head: bytes) -> None:
        super().__init__(f"message of at least {size} bytes exceeds the limit")
        self.size = size
        self.head = head


class Framer:
    """Splits the incoming byte stream into NETCONF messages and frames outgoing ones."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.framing = Framing.EOM
        self.max_message = max_message
        self._buf = bytearray()
        self._pos = 0  # start of unconsumed input in _buf
        self._chunks: list[bytes] = []  # chunks of the message being assembled (chunked framing)
        self._size = 0  # bytes in _chunks
        self._need = 0  # bytes of the current chunk still to come
        self._eom_scan = 0  # where to resume the search for EOM
        self._failed: FramingError | None = None
        self._dropping: bytes | None = None  # head of a too-big message being skipped
        self._dropped = 0  # bytes of it skipped so far

    # --- input -------------------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self._failed is not None:
            raise self._failed
        if self._pos and self._pos > len(self._buf) // 2:
            del self._buf[: self._pos]
            self._eom_scan = max(0, self._eom_scan - self._pos)
            self._pos = 0
        self._buf += data

    def switch_to_chunked(self) -> None:
        """After the hellos, when both peers support base:1.1 (input already buffered is reinterpreted)."""
        self.framing = Framing.CHUNKED

    def next_message(self) -> bytes | None:
        """The next complete message, or None when more data is needed.

        :raises FramingError: the stream cannot be a valid NETCONF stream.
        """
        if self._failed is not None:
            raise self._failed
        try:
            message = self._next_eom() if self.framing is Framing.EOM else self._next_chunked()
        except FramingError as exc:
            self._failed = exc
            raise
        except MessageTooBig:
            self._release()
            raise
        if message is not None:
            self._release()
        return message

    def _release(self) -> None:
        """After a whole message, when nothing follows it: the buffer goes (it kept the message's bytes, as large
        as the message itself, until the next input compacted it: a 10 MB edit held 10 MB in an idle session)."""
        if self._pos == len(self._buf):
            self._buf = bytearray()
            self._pos = self._eom_scan = 0

    def _next_eom(self) -> bytes | None:
        start = max(self._pos, self._eom_scan)
        idx = self._buf.find(EOM, start)
        if idx < 0:
            pending = len(self._buf) - self._pos
            if pending > self.max_message or self._dropping is not None:
                keep = len(EOM) - 1  # the start of an EOM split across reads
                if self._dropping is None:
                    self._dropping = bytes(self._buf[self._pos : self._pos + HEAD])
                self._dropped += max(0, pending - keep)
                self._pos = max(self._pos, len(self._buf) - keep)
            self._eom_scan = max(self._pos, len(self._buf) - len(EOM) + 1)
            return None
        message = bytes(self._buf[self._pos : idx])
        self._pos = idx + len(EOM)
        self._eom_scan = self._pos
        if self._dropping is not None or len(message) > self.max_message:
            head = self._dropping if self._dropping is not None else message[:HEAD]
            size = self._dropped + len(message)
            self._dropping, self._dropped = None, 0
            raise MessageTooBig(size, head)
        return message

    def _next_chunked(self) -> bytes | None:
        buf = self._buf
        while True:
            if self._need:
                take = min(self._need, len(buf) - self._pos)
                if take == 0:
                    return None
                if self._dropping is None:
                    self._chunks.append(bytes(buf[self._pos : self._pos + take]))
                elif len(self._dropping) < HEAD:
                    self._dropping += bytes(buf[self._pos : self._pos + min(take, HEAD - len(self._dropping))])
                self._pos += take
                self._need -= take
                continue
            avail = len(buf) - self._pos
            if avail < 4:
                self._check_header_prefix()
                return None
            if buf[self._pos : self._pos + 4] == b"\n##\n":
                self._pos += 4
                if not self._chunks and self._dropping is None:
                    raise FramingError("end-of-chunks without a chunk")
                message = b"".join(self._chunks)
                self._chunks = []
                size, self._size = self._size, 0
                if self._dropping is not None:
                    head, self._dropping = self._dropping, None
                    raise MessageTooBig(size, head)
                return message
            m = _CHUNK_HEADER.match(buf, self._pos)
            if m is None:
                if avail >= _HEADER_MAX or not self._check_header_prefix():
                    raise FramingError("invalid chunk header")
                return None
            size = int(m.group(1))
            if size > _MAX_CHUNK:
                raise FramingError("chunk size above 4294967295")
            self._size += size
            if self._size > self.max_message and self._dropping is None:
                self._dropping = b"".join(self._chunks)[:HEAD]
                self._chunks = []
            self._pos = m.end()
            self._need = size

    def _check_header_prefix(self) -> bool:
        """Whether the incomplete bytes at the cursor can still become a chunk header or end-of-chunks."""
        tail = bytes(self._buf[self._pos :])
        if not tail:
            return True
        ok = re.fullmatch(rb"\n(#([1-9][0-9]{0,9})?|##?)?", tail) is not None
        if not ok:
            raise FramingError("invalid chunk header")
        return True

    # --- output ------------------------------------------------------------------------------------------------

    def frame(self, message: bytes) -> bytes:
        if self.framing is Framing.EOM:
            return message + EOM
        if not message:
            raise ValueError("chunked framing cannot carry an empty message")
        return b"\n#%d\n" % len(message) + message + b"\n##\n"
