"""Every corpus request (``tests/corpus``), fed whole, line by line, byte by byte and in
seeded random pieces: each split must give exactly the expected events or error status.

The runner plays a minimal server: it answers each request once its body is read, starts the
next cycle when the connection is reusable, and derives path and query from the target as
the server layer does (``split_target``, ``decode_path``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kakehashi import http1
from kakehashi.errors import RemoteProtocolError
from tests.corpus import generate

CORPUS = Path(__file__).resolve().parent / "corpus"


def _whole(raw: bytes) -> list[bytes]:
    return [raw]


def _per_line(raw: bytes) -> list[bytes]:
    return [line for line in raw.splitlines(keepends=True)]


def _per_byte(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


def _random(seed: int) -> Callable[[bytes], list[bytes]]:
    def split(raw: bytes) -> list[bytes]:
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(1, 8))))
        return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]

    return split


SPLITS: dict[str, Callable[[bytes], list[bytes]]] = {
    "whole": _whole,
    "per-line": _per_line,
    "per-byte": _per_byte,
    **{f"random-{seed}": _random(seed) for seed in (1, 2, 3)},
}


def _text(data: bytes) -> str:
    return data.decode("latin-1")


def _summary(event: http1.Request) -> dict[str, Any]:
    path, query = http1.split_target(event.method, event.target)
    return {
        "type": "request",
        "method": _text(event.method),
        "target": _text(event.target),
        "version": _text(event.http_version),
        "headers": [[_text(n), _text(v)] for n, v in event.headers],
        "framing": event.framing.value,
        "content_length": event.content_length,
        "keep_alive": event.keep_alive,
        "expect_continue": event.expect_continue,
        "path": http1.decode_path(path).decode("utf-8", "surrogateescape"),
        "query": _text(query),
    }


class Runner:
    """Feeds pieces to a server Connection and records its events."""

    def __init__(self, limits: http1.Limits) -> None:
        self.conn = http1.Connection(http1.Role.SERVER, limits)
        self.events: list[dict[str, Any]] = []

    def feed(self, piece: bytes) -> None:
        self.conn.receive_data(piece)
        self.drain()

    def drain(self) -> None:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is http1.NEED_DATA:
                return
            if event is http1.PAUSED:
                if not conn.is_reusable:
                    if conn.trailing_data[1]:
                        self.events.append({"type": "paused"})
                    return
                conn.start_next_cycle()
            elif isinstance(event, http1.ConnectionClosed):
                self.events.append({"type": "closed"})
                return
            else:
                self._record(event)

    def _record(self, event: object) -> None:
        if isinstance(event, http1.Request):
            self.events.append(_summary(event))
        elif isinstance(event, http1.Data):
            last = self.events[-1]
            if last["type"] == "data":
                last["data"] += _text(event.data)
            else:
                self.events.append({"type": "data", "data": _text(event.data)})
        else:
            assert isinstance(event, http1.EndOfMessage)
            self.events.append(
                {"type": "end", "trailers": [[_text(n), _text(v)] for n, v in event.trailers]}
            )
            self.conn.send(http1.Response(204))
            self.conn.send(http1.EndOfMessage())


def run(pieces: list[bytes], limits: http1.Limits) -> list[dict[str, Any]]:
    runner = Runner(limits)
    for piece in pieces:
        runner.feed(piece)
    runner.feed(b"")
    return runner.events


def _cases(kind: str) -> Iterator[Any]:
    for path in sorted((CORPUS / kind).glob("*.http")):
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        limits = http1.Limits(**meta.get("limits", {}))
        yield pytest.param(path.read_bytes(), meta, limits, id=path.stem)


# The splits run inside one test per fixture: a test per split costs more in pytest than
# in parsing.  A failure names its split.
@pytest.mark.parametrize(("raw", "meta", "limits"), list(_cases("valid")))
def test_valid_request(raw: bytes, meta: dict[str, Any], limits: http1.Limits) -> None:
    for name, split in SPLITS.items():
        assert run(split(raw), limits) == meta["events"], name


@pytest.mark.parametrize(("raw", "meta", "limits"), list(_cases("invalid")))
def test_invalid_request(raw: bytes, meta: dict[str, Any], limits: http1.Limits) -> None:
    for name, split in SPLITS.items():
        with pytest.raises(RemoteProtocolError) as info:
            run(split(raw), limits)
        assert info.value.status_hint == meta["status"], f"{name}: {info.value}"


def test_corpus_files_match_their_generator() -> None:
    expected = generate.expected_files()
    on_disk = {
        str(p.relative_to(CORPUS)): p.read_bytes()
        for sub in ("valid", "invalid")
        for p in (CORPUS / sub).iterdir()
    }
    assert on_disk == expected, "run: PYTHONPATH=. python tests/corpus/generate.py"


def test_every_split_covers_the_input() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    for split in SPLITS.values():
        assert b"".join(split(raw)) == raw
