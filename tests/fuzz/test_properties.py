"""Properties over generated input: round trips, and nothing but RemoteProtocolError.

Derandomised with a modest number of examples, so CI is deterministic and fast; set
KAKEHASHI_FUZZ_EXAMPLES (say 3000) locally to search harder.
"""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kakehashi import http1
from tests.fuzz.strategies import Message, first_message, messages, mutated, summary

FUZZ = settings(
    max_examples=int(os.environ.get("KAKEHASHI_FUZZ_EXAMPLES", "40")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _pieces(raw: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out, pos = [], 0
    while pos < len(raw):
        step = rng.randint(1, 7)
        out.append(raw[pos : pos + step])
        pos += step
    return out


@FUZZ
@given(messages(), st.integers(0, 1000))
def test_valid_requests_round_trip(msg: Message, seed: int) -> None:
    raw = msg.serialise()
    framing_fields = {
        "length": [(b"content-length", b"%d" % len(msg.body))],
        "chunked": [(b"transfer-encoding", b"chunked")],
        "none": [],
    }[msg.framing]
    expected = (
        msg.method,
        msg.target,
        msg.version,
        [(n.lower(), v) for n, v in msg.headers] + framing_fields,
        msg.body,
        [(n.lower(), v) for n, v in msg.trailers],
    )
    assert first_message([raw]) == ("ok", expected)
    assert first_message(_pieces(raw, seed)) == ("ok", expected)


@FUZZ
@given(messages())
def test_writers_and_parser_agree(msg: Message) -> None:
    """kakehashi's own request writer produces what its parser reads back."""
    head = http1.write_request_head(msg.method, msg.target, msg.headers, msg.version)
    parsed = http1.maybe_parse_request_head(head, 0, http1.DEFAULT_LIMITS)
    assert parsed is not None
    request, end = parsed
    assert end == len(head)
    assert summary(request, b"", http1.Headers())[:4] == (
        msg.method,
        msg.target,
        msg.version,
        [(n.lower(), v) for n, v in msg.headers],
    )


def _same_outcome_in_pieces(raw: bytes, seed: int) -> None:
    # first_message lets only RemoteProtocolError through as an outcome; anything else fails.
    whole = first_message([raw])
    assert first_message(_pieces(raw, seed)) == whole
    assert first_message([raw[i : i + 1] for i in range(len(raw))]) == whole


@FUZZ
@given(st.binary(max_size=200), st.integers(0, 1000))
def test_random_bytes_only_raise_remote_protocol_error(raw: bytes, seed: int) -> None:
    _same_outcome_in_pieces(raw, seed)


@FUZZ
@given(st.binary(max_size=120), st.integers(0, 1000))
def test_random_bytes_after_a_valid_head(raw: bytes, seed: int) -> None:
    _same_outcome_in_pieces(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + raw, seed
    )


@FUZZ
@given(mutated(), st.integers(0, 1000))
def test_mutated_requests_only_raise_remote_protocol_error(raw: bytes, seed: int) -> None:
    _same_outcome_in_pieces(raw, seed)


@FUZZ
@given(mutated())
def test_mutated_requests_with_tight_limits(raw: bytes) -> None:
    limits = http1.Limits(
        max_request_line_bytes=40,
        max_field_bytes=30,
        max_header_bytes=120,
        max_fields=4,
        max_body_bytes=25,
        max_chunk_line_bytes=8,
    )
    whole = first_message([raw], limits)
    assert first_message([raw[i : i + 1] for i in range(len(raw))], limits) == whole
