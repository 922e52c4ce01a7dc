"""Masking (RFC 6455 §5.3): XOR of a payload with a repeated 4-byte key.

No I/O here.  A byte-by-byte loop runs at a few MB/s; instead the payload and the repeated key
are turned into two Python integers and XORed at once, all three steps running in C.  Big
integers leave the CPU cache past a few KiB, so a long payload is done in 8 KiB slices, which
keeps the speed flat with size.

Measured with ``timeit`` (CPython 3.11, one core of the shared build machine, best of a few):

    payload     one int     8 KiB slices
    16 B        0.47 us     (same path)
    4 KiB       7.8 us      (same path)      ~520 MB/s
    64 KiB      172 us      88 us            ~750 MB/s
    1 MiB       4.3 ms      1.35 ms          ~770 MB/s

That is still the largest cost of a big message: 88 of about 186 us of server CPU for a
64 KiB echo.  A loop in C does 64 KiB in 2.6 us, so, as uvloop is for the event loop, C is
an optional extra here: with ``pip install 'kakehashi[speedups]'`` (the ``websockets``
package, whose ``websockets.speedups.apply_mask`` is such a loop; uvicorn's WebSocket
backends use it too), :func:`apply_mask` is that function, and the pure-Python one
(:func:`python_apply_mask`) otherwise, or when ``KAKEHASHI_PURE_PYTHON`` is set in the
environment.  Both give the same bytes (tests/websocket/test_frames.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["ACCELERATED", "apply_mask", "python_apply_mask"]

# Slices of this many bytes stay in the cache; a multiple of 4, so every slice starts at the
# key's first byte and one precomputed key integer serves them all.
_SLICE = 8192


def _key_at(key: bytes, offset: int) -> bytes:
    """``key`` turned to start at its byte ``offset % 4`` (a piece that starts mid-key)."""
    rot = offset & 3
    return key[rot:] + key[:rot] if rot else key


def python_apply_mask(data: bytes | bytearray | memoryview, key: bytes, offset: int = 0) -> bytes:
    """``data`` XOR the 4-byte ``key`` repeated, starting at key byte ``offset % 4``.

    Masking and unmasking are the same operation.  ``offset`` lets a payload that arrives in
    pieces be unmasked piece by piece: pass the number of payload bytes before this piece.
    """
    n = len(data)
    if not n:
        return b""
    key = _key_at(key, offset)
    if n <= _SLICE:
        q, r = divmod(n, 4)
        stream = int.from_bytes(key * q + key[:r], "little")
        return (int.from_bytes(data, "little") ^ stream).to_bytes(n, "little")
    view = memoryview(data)
    stream = int.from_bytes(key * (_SLICE // 4), "little")
    from_bytes = int.from_bytes
    whole = n - n % _SLICE
    out = [
        (from_bytes(view[i : i + _SLICE], "little") ^ stream).to_bytes(_SLICE, "little")
        for i in range(0, whole, _SLICE)
    ]
    if whole < n:
        out.append(python_apply_mask(view[whole:], key))
    return b"".join(out)


def _c_loop() -> Callable[[bytes | bytearray | memoryview, bytes], bytes] | None:
    """The C loop of the ``speedups`` extra, unless absent or refused by the environment."""
    if os.environ.get("KAKEHASHI_PURE_PYTHON"):
        return None
    try:
        from websockets.speedups import apply_mask as c_apply_mask
    except ImportError:  # not installed, or built without its C part
        return None
    return c_apply_mask  # type: ignore[return-value]  # its stub says bytes; any buffer works


_C_LOOP = _c_loop()
# True when the C loop masks (docs/websocket.md, "Masking speed").
ACCELERATED = _C_LOOP is not None


def apply_mask(data: bytes | bytearray | memoryview, key: bytes, offset: int = 0) -> bytes:
    """``data`` XOR the 4-byte ``key`` repeated, starting at key byte ``offset % 4``: the C
    loop of the ``speedups`` extra when it is installed, else :func:`python_apply_mask`."""
    c_loop = _C_LOOP
    if c_loop is None:
        return python_apply_mask(data, key, offset)
    return c_loop(data, _key_at(key, offset) if offset & 3 else key)
