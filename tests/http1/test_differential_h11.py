"""Differential testing against h11 on valid and mutated requests.

Where the two disagree on a mutated request, the input must show one of the named, documented
differences below (docs/http-conformance.md, "Differences from h11"); any other disagreement
fails the test.  Each named difference also has a pinned example, so the list stays honest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import h11
import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.strategies import Message, Outcome, first_message, messages, mutated

DIFF = settings(
    max_examples=int(os.environ.get("KAKEHASHI_FUZZ_EXAMPLES", "40")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def h11_first_message(raw: bytes) -> Outcome:
    conn = h11.Connection(h11.SERVER)
    request: h11.Request | None = None
    body = b""
    try:
        for piece in (raw, b""):
            conn.receive_data(piece)
            while True:
                event = conn.next_event()
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    assert request is not None
                    return "ok", (
                        request.method,
                        request.target,
                        request.http_version,
                        list(request.headers),
                        body,
                        list(event.headers),
                    )
                elif isinstance(event, h11.ConnectionClosed):
                    return "closed", None
                else:
                    break
    except h11.RemoteProtocolError as exc:
        return "error", exc.error_status_hint
    raise AssertionError("h11 gave no outcome")


def _head(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[:end]


def _fields(raw: bytes, name: bytes) -> list[bytes]:
    pattern = rb"(?im)^" + re.escape(name) + rb"[ \t]*:([^\r\n]*)"
    return re.findall(pattern, _head(raw))


# uri-host [ ":" port ] (RFC 3986 §3.2.2, §3.2.3), written out again here for the check.
_HOST_OK = re.compile(
    rb"[ \t]*(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~%!$&'()*+,;=]*)(?::[0-9]*)?[ \t]*"
)

# name -> a test of the raw request showing the difference.  Each is documented, with its
# RFC section, in docs/http-conformance.md.
EXPECTED_DIFFERENCES: dict[str, Callable[[bytes], bool]] = {
    # RFC 9112 §2.2: we take only CRLF as a line end; h11 also takes a bare LF (in the head,
    # and in the chunk-size and trailer lines of a chunked body).
    "bare-lf-line-end": lambda raw: (
        re.search(rb"(?<!\r)\n", _head(raw) + b"\r\n\r\n") is not None
        or (bool(_fields(raw, b"transfer-encoding")) and re.search(rb"(?<!\r)\n", raw) is not None)
    ),
    # RFC 9112 §5.2: we refuse obs-fold; h11 unfolds it.
    "obs-fold": lambda raw: re.search(rb"\n[ \t]", _head(raw)) is not None,
    # RFC 9112 §2.2: we ignore empty lines before the request line; h11 refuses them.
    "leading-empty-line": lambda raw: raw.startswith((b"\r\n", b"\n")),
    # RFC 9110 §5.5: we refuse every CTL but HTAB in a field; h11 lets some through.
    "ctl-in-field": lambda raw: re.search(rb"[\x01-\x08\x0e-\x1f\x7f]", _head(raw)) is not None,
    # RFC 9112 §3.2: we accept obs-text (raw UTF-8) in the request-target; h11 refuses it.
    "obs-text-in-target": lambda raw: re.search(rb"[\x80-\xff]", raw.split(b"\n")[0]) is not None,
    # RFC 9110 §2.5: we answer 505 to any version but 1.0 and 1.1; h11 accepts any 1-digit.
    "version-not-1.0-or-1.1": lambda raw: re.match(rb"[^\r\n]* HTTP/1\.[01]\r?\n", raw) is None,
    # RFC 9110 §10.1.1: we answer 417 to an expectation other than 100-continue.
    "unknown-expectation": lambda raw: bool(_fields(raw, b"expect")),
    # RFC 9112 §6.3: we refuse Content-Length beside Transfer-Encoding; h11 lets TE win.
    "te-with-content-length": lambda raw: (
        bool(_fields(raw, b"transfer-encoding")) and bool(_fields(raw, b"content-length"))
    ),
    # RFC 9112 §6.1: we refuse Transfer-Encoding in HTTP/1.0; h11 decodes it.
    "te-in-http10": lambda raw: (
        bool(_fields(raw, b"transfer-encoding")) and b"HTTP/1.0" in raw.split(b"\n")[0]
    ),
    # RFC 9110 §5.6.1: we ignore empty list elements in Transfer-Encoding; h11 refuses them.
    "te-list-syntax": lambda raw: any(b"," in v for v in _fields(raw, b"transfer-encoding")),
    # RFC 9112 §3.2: we check the Host value's syntax; h11 does not.
    "host-syntax": lambda raw: any(_HOST_OK.fullmatch(v) is None for v in _fields(raw, b"host")),
    # RFC 9112 §7.1.1: we follow the chunk-ext grammar (BWS before ";" allowed, a malformed
    # extension refused); h11 refuses the BWS and takes anything after ";".
    "chunk-ext-grammar": lambda raw: (
        re.search(rb"\n[0-9a-fA-F]+[ \t]*;", raw) is not None
        or re.search(rb"\n[0-9a-fA-F]+[ \t]+[^\r \t]", raw) is not None
    ),
    # RFC 9112 §7.1: no whitespace at the end of a chunk-size line (after the size or the
    # extensions); h11 takes OWS before the CRLF.
    "chunk-line-trailing-whitespace": lambda raw: (
        re.search(rb"\n[0-9a-fA-F]+(?:[ \t]*;[^\r\n]*)?[ \t]\r\n", raw) is not None
    ),
}

PINNED = {
    "bare-lf-line-end": b"GET / HTTP/1.1\nHost: a\n\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    "leading-empty-line": b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "ctl-in-field": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
    "obs-text-in-target": b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
    "version-not-1.0-or-1.1": b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    "unknown-expectation": b"GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n",
    "te-with-content-length": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-in-http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-list-syntax": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n",
    "host-syntax": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "chunk-ext-grammar": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5 ;x\r\nhello\r\n0\r\n\r\n",
    "chunk-line-trailing-whitespace": b"POST / HTTP/1.1\r\nHost: a\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
}


def _verdict(outcome: Outcome) -> object:
    # Statuses differ by design (h11 says 400 where we say 413, 417, 505...): compare
    # accept/refuse, and what was accepted.
    return outcome if outcome[0] == "ok" else "refused"


def explained(raw: bytes) -> list[str]:
    return [name for name, shows in EXPECTED_DIFFERENCES.items() if shows(raw)]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_each_documented_difference_is_real(name: str) -> None:
    raw = PINNED[name]
    assert _verdict(first_message([raw])) != _verdict(h11_first_message(raw))
    assert name in explained(raw)


def test_documented_differences_match_the_docs() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "http-conformance.md").read_text(
        encoding="utf-8"
    )
    for name in EXPECTED_DIFFERENCES:
        assert f"`{name}`" in doc, name


@DIFF
@given(messages())
def test_valid_requests_agree_with_h11(msg: Message) -> None:
    raw = msg.serialise()
    ours, theirs = first_message([raw]), h11_first_message(raw)
    assert ours[0] == "ok"
    assert ours == theirs


@DIFF
@given(mutated())
def test_mutated_requests_agree_with_h11_or_differ_as_documented(raw: bytes) -> None:
    ours, theirs = _verdict(first_message([raw])), _verdict(h11_first_message(raw))
    if ours != theirs:
        assert explained(raw), f"undocumented difference: ours={ours} h11={theirs}"
