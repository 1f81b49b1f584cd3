"""The one wire format between the driver and its worker processes: JSON headers and ``.npy`` arrays.

A message is a frame::

    u64 little-endian  length of the JSON header
    JSON header        {"kind": ..., "body": {...}, "arrays": [n0, n1, ...]}
    n0 bytes, n1 bytes, ...   each one array in NumPy's ``.npy`` format

Nothing is ever unpickled: the header is plain JSON and each array is read with
``np.lib.format.read_array(..., allow_pickle=False)``, then checked to be a real numeric
array (no object, complex, structured or zero-size-dtype data). A worker that runs
adapter code can therefore send the driver nothing but numbers and strings.

The reader enforces limits before it allocates: a header over ``max_header`` bytes or
arrays over ``max_payload`` bytes in all end the message with `ChannelError` (the
driver turns that into an error row for the task). Reads take a deadline.
"""

from __future__ import annotations

import io
import json
import os
import select
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_LENGTH = struct.Struct("<Q")
MAX_HEADER = 16 << 20  # a hello, a bench row with its samples, a result's snapshot index
_NUMERIC_KINDS = "fiu"


class ChannelError(Exception):
    """A malformed or oversized message: the peer is broken (or hostile); never bad user input."""


class PeerClosed(Exception):
    """The other end closed the pipe (the worker exited)."""


@dataclass
class Message:
    kind: str
    body: dict[str, Any] = field(default_factory=dict)
    arrays: list[np.ndarray] = field(default_factory=list)


def encode(kind: str, body: dict[str, Any] | None = None, arrays: Sequence[np.ndarray] = ()) -> bytes:
    """One frame. ``body`` must be JSON (NaN and infinities are written as JSON's extensions)."""
    blobs = []
    for a in arrays:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
        blobs.append(buf.getvalue())
    header = json.dumps({"kind": kind, "body": body or {}, "arrays": [len(b) for b in blobs]},
                        default=_json_default).encode()
    return b"".join([_LENGTH.pack(len(header)), header, *blobs])


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def send(fd: int, kind: str, body: dict[str, Any] | None = None, arrays: Sequence[np.ndarray] = ()) -> None:
    """Write one frame to the file descriptor ``fd`` (blocking, all of it)."""
    view = memoryview(encode(kind, body, arrays))
    while view:
        view = view[os.write(fd, view):]


class Reader:
    """Frames from a pipe, each read before a deadline and within size limits."""

    def __init__(self, fd: int, max_header: int = MAX_HEADER):
        self.fd, self.max_header = fd, max_header
        self.buf = bytearray()

    def _fill(self, n: int, deadline: float | None) -> None:
        while len(self.buf) < n:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                ready, _, _ = select.select([self.fd], [], [], remaining)
                if not ready:
                    raise TimeoutError
            chunk = os.read(self.fd, min(1 << 20, max(n - len(self.buf), 1 << 16)))
            if not chunk:
                raise PeerClosed
            self.buf += chunk

    def _take(self, n: int, deadline: float | None) -> bytes:
        self._fill(n, deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read(self, deadline: float | None = None, max_payload: int = 1 << 30) -> Message:
        """The next message. `TimeoutError` past ``deadline`` (monotonic seconds), `PeerClosed` at the
        end of the stream, `ChannelError` for a malformed or oversized frame (the stream is then
        unusable: the caller stops reading it)."""
        (size,) = _LENGTH.unpack(self._take(_LENGTH.size, deadline))
        if size > self.max_header:
            raise ChannelError(f"a message header of {size} bytes (limit {self.max_header})")
        try:
            header = json.loads(self._take(size, deadline))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ChannelError(f"a message header that is not JSON ({exc})") from None
        if not isinstance(header, dict) or not isinstance(header.get("kind"), str) \
                or not isinstance(header.get("body", {}), dict):
            raise ChannelError("a message header without kind and body")
        sizes = header.get("arrays", [])
        if not isinstance(sizes, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                                  for n in sizes):
            raise ChannelError("a message header with a malformed array list")
        if sum(sizes) > max_payload:
            raise ChannelError(f"{sum(sizes)} bytes of arrays in one message (at most {max_payload} expected)")
        arrays = [_array(self._take(n, deadline)) for n in sizes]
        return Message(header["kind"], header.get("body", {}), arrays)


def _array(blob: bytes) -> np.ndarray:
    f = io.BytesIO(blob)
    try:
        array = np.lib.format.read_array(f, allow_pickle=False)
    except Exception as exc:  # NumPy raises ValueError, OSError, EOFError, ... for a corrupt .npy
        raise ChannelError(f"a malformed array ({type(exc).__name__}: {str(exc)[:200]})") from None
    if f.tell() != len(blob):
        raise ChannelError("an array followed by extra bytes")
    if array.dtype.kind not in _NUMERIC_KINDS or array.dtype.itemsize == 0:
        raise ChannelError(f"an array of dtype {array.dtype} (real numbers only)")
    return array


def read_stdin_request(max_bytes: int = 1 << 34) -> Message:
    """The request a worker receives on its standard input (one frame, no deadline)."""
    return Reader(0).read(None, max_bytes)


__all__ = ["ChannelError", "Message", "PeerClosed", "Reader", "encode", "send"]
