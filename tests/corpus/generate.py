"""Writes the request corpus: ``valid/NAME.http`` + ``.json`` and ``invalid/NAME.http`` + ``.json``.

Run from the project root:  PYTHONPATH=. python tests/corpus/generate.py

The ``.http`` files hold exact bytes (CRLF and all), so they are written from the byte
literals below rather than typed by hand; both the generator and its output are committed, and
``tests/test_corpus.py`` checks that they agree.  Every expectation here is written by hand
from the RFC, never computed by the parser under test.

Valid ``.json``: ``{"events": [...], "limits": {...}?}``; events are ``request`` (head fields
plus ``path``/``query`` as the server derives them), ``data`` (all body bytes of one message,
latin-1), ``end`` (with trailers), then ``closed`` (EOF after the last message) or ``paused``
(the connection will close and bytes are left unread).
Invalid ``.json``: ``{"status": N, "limits": {...}?}``: the status_hint of the error raised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.corpus.invalid_cases import INVALID

HERE = Path(__file__).resolve().parent
H = b"Host: example.com\r\n"


def req(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    *,
    version: str = "1.1",
    framing: str = "none",
    content_length: int | None = None,
    keep_alive: bool = True,
    expect_continue: bool = False,
    path: str | None = None,
    query: str = "",
) -> dict[str, Any]:
    return {
        "type": "request",
        "method": method,
        "target": target,
        "version": version,
        "headers": [list(h) for h in headers],
        "framing": framing,
        "content_length": content_length,
        "keep_alive": keep_alive,
        "expect_continue": expect_continue,
        "path": target.partition("?")[0] if path is None else path,
        "query": query,
    }


def data(text: str) -> dict[str, Any]:
    return {"type": "data", "data": text}


def end(*trailers: tuple[str, str]) -> dict[str, Any]:
    return {"type": "end", "trailers": [list(t) for t in trailers]}


HOST = ("Host", "example.com")
CLOSED = {"type": "closed"}
PAUSED = {"type": "paused"}
GET = req("GET", "/", [HOST])

# name -> (raw bytes, expected events, limits or None)
VALID: dict[str, tuple[bytes, list[dict[str, Any]], dict[str, int] | None]] = {
    "get_minimal": (b"GET / HTTP/1.1\r\n" + H + b"\r\n", [GET, end(), CLOSED], None),
    "get_http10_no_host": (
        b"GET /x HTTP/1.0\r\n\r\n",
        [req("GET", "/x", [], version="1.0", keep_alive=False), end(), CLOSED],
        None,
    ),
    "http10_keep_alive": (
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
        [
            req("GET", "/", [("Connection", "Keep-Alive")], version="1.0"),
            end(),
            req("GET", "/2", [], version="1.0", keep_alive=False),
            end(),
            CLOSED,
        ],
        None,
    ),
    "post_content_length": (
        b"POST /f HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello",
        [
            req("POST", "/f", [HOST, ("Content-Length", "5")], framing="length", content_length=5),
            data("hello"),
            end(),
            CLOSED,
        ],
        None,
    ),
    "content_length_zero": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n",
        [req("POST", "/", [HOST, ("Content-Length", "0")], content_length=0), end(), CLOSED],
        None,
    ),
    "content_length_leading_zeros": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 003\r\n\r\nabc",
        [
            req("POST", "/", [HOST, ("Content-Length", "003")], framing="length", content_length=3),
            data("abc"),
            end(),
            CLOSED,
        ],
        None,
    ),
    "content_length_ows_trimmed": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \t 5 \t\r\n\r\nhello",
        [
            req("POST", "/", [HOST, ("Content-Length", "5")], framing="length", content_length=5),
            data("hello"),
            end(),
            CLOSED,
        ],
        None,
    ),
    "content_length_repeated_same": (
        b"PUT / HTTP/1.1\r\n" + H + b"Content-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok",
        [
            req(
                "PUT",
                "/",
                [HOST, ("Content-Length", "2"), ("Content-Length", "2, 2")],
                framing="length",
                content_length=2,
            ),
            data("ok"),
            end(),
            CLOSED,
        ],
        None,
    ),
    "chunked_with_extensions_and_trailers": (
        b"POST /up HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
        b'5;a=b;quoted="x\\"y"\r\nhello\r\n'
        b"6 ; bws = 1\r\n world\r\n"
        b"0\r\nX-Checksum: abc\r\nX-Other:  two words \r\n\r\n",
        [
            req("POST", "/up", [HOST, ("Transfer-Encoding", "chunked")], framing="chunked"),
            data("hello world"),
            end(("X-Checksum", "abc"), ("X-Other", "two words")),
            CLOSED,
        ],
        None,
    ),
    "chunked_size_hex_case_and_zeros": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
        b"000a\r\n0123456789\r\n0B\r\nabcdefghijk\r\n00\r\n\r\n",
        [
            req("POST", "/", [HOST, ("Transfer-Encoding", "chunked")], framing="chunked"),
            data("0123456789abcdefghijk"),
            end(),
            CLOSED,
        ],
        None,
    ),
    "chunked_coding_name_case": (
        b"POST / HTTP/1.1\r\n" + H + b"transfer-encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        [
            req("POST", "/", [HOST, ("transfer-encoding", "CHUNKED")], framing="chunked"),
            data("abc"),
            end(),
            CLOSED,
        ],
        None,
    ),
    "chunked_tab_before_value": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n",
        [
            req("POST", "/", [HOST, ("Transfer-Encoding", "chunked")], framing="chunked"),
            end(),
            CLOSED,
        ],
        None,
    ),
    "chunked_empty_list_element": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: ,chunked,\r\n\r\n0\r\n\r\n",
        [
            req("POST", "/", [HOST, ("Transfer-Encoding", ",chunked,")], framing="chunked"),
            end(),
            CLOSED,
        ],
        None,
    ),
    "leading_empty_lines": (
        b"\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n",
        [GET, end(), CLOSED],
        None,
    ),
    "empty_lines_after_body_then_eof": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2\r\n\r\nok\r\n",
        [
            req("POST", "/", [HOST, ("Content-Length", "2")], framing="length", content_length=2),
            data("ok"),
            end(),
            CLOSED,
        ],
        None,
    ),
    "pipelined_three": (
        b"GET /1 HTTP/1.1\r\n" + H + b"\r\n"
        b"POST /2 HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc"
        b"GET /3 HTTP/1.1\r\n" + H + b"\r\n",
        [
            req("GET", "/1", [HOST]),
            end(),
            req("POST", "/2", [HOST, ("Content-Length", "3")], framing="length", content_length=3),
            data("abc"),
            end(),
            req("GET", "/3", [HOST]),
            end(),
            CLOSED,
        ],
        None,
    ),
    "connection_close_leaves_the_rest": (
        b"GET / HTTP/1.1\r\n"
        + H
        + b"Connection: close\r\n\r\nGET /never HTTP/1.1\r\n"
        + H
        + b"\r\n",
        [req("GET", "/", [HOST, ("Connection", "close")], keep_alive=False), end(), PAUSED],
        None,
    ),
    "connection_tokens_list": (
        b"GET / HTTP/1.1\r\n" + H + b"Connection: Upgrade, CLOSE\r\n\r\n",
        [
            req("GET", "/", [HOST, ("Connection", "Upgrade, CLOSE")], keep_alive=False),
            end(),
            CLOSED,
        ],
        None,
    ),
    "repeated_fields_kept_in_order": (
        b"GET / HTTP/1.1\r\nAccept: a\r\n" + H + b"X-Tag: 1\r\nAccept: b\r\nx-tag: 2\r\n\r\n",
        [
            req(
                "GET",
                "/",
                [("Accept", "a"), HOST, ("X-Tag", "1"), ("Accept", "b"), ("x-tag", "2")],
            ),
            end(),
            CLOSED,
        ],
        None,
    ),
    "names_in_unusual_case_slow_path": (
        b"POST / HTTP/1.1\r\nhOsT: example.com\r\ncOnTeNt-LeNgTh: 1\r\n\r\nZ",
        [
            req(
                "POST",
                "/",
                [("hOsT", "example.com"), ("cOnTeNt-LeNgTh", "1")],
                framing="length",
                content_length=1,
            ),
            data("Z"),
            end(),
            CLOSED,
        ],
        None,
    ),
    "values_trimmed_and_empty": (
        b"GET / HTTP/1.1\r\n" + H + b"X-A:   a  b \t\r\nX-Empty:\r\nX-Spaces:    \r\n\r\n",
        [
            req("GET", "/", [HOST, ("X-A", "a  b"), ("X-Empty", ""), ("X-Spaces", "")]),
            end(),
            CLOSED,
        ],
        None,
    ),
    "obs_text_in_value": (
        b"GET / HTTP/1.1\r\n" + H + b"X-Name: caf\xc3\xa9\r\n\r\n",
        [req("GET", "/", [HOST, ("X-Name", "caf\xc3\xa9")]), end(), CLOSED],
        None,
    ),
    "custom_method_token": (
        b"PURGE /cache HTTP/1.1\r\n" + H + b"\r\n",
        [req("PURGE", "/cache", [HOST]), end(), CLOSED],
        None,
    ),
    "head_request": (
        b"HEAD /x HTTP/1.1\r\n" + H + b"\r\n",
        [req("HEAD", "/x", [HOST]), end(), CLOSED],
        None,
    ),
    "absolute_form": (
        b"GET http://example.com/a/b?c=d HTTP/1.1\r\n" + H + b"\r\n",
        [req("GET", "http://example.com/a/b?c=d", [HOST], path="/a/b", query="c=d"), end(), CLOSED],
        None,
    ),
    "absolute_form_empty_path": (
        b"GET HTTPS://example.com HTTP/1.1\r\n" + H + b"\r\n",
        [req("GET", "HTTPS://example.com", [HOST], path="/"), end(), CLOSED],
        None,
    ),
    "authority_form_connect": (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        [
            req(
                "CONNECT", "example.com:443", [("Host", "example.com:443")], path="example.com:443"
            ),
            end(),
            CLOSED,
        ],
        None,
    ),
    "asterisk_form_options": (
        b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n",
        [req("OPTIONS", "*", [HOST]), end(), CLOSED],
        None,
    ),
    "origin_form_query": (
        b"GET /search?q=a%20b&x HTTP/1.1\r\n" + H + b"\r\n",
        [req("GET", "/search?q=a%20b&x", [HOST], query="q=a%20b&x"), end(), CLOSED],
        None,
    ),
    "percent_encoded_utf8_path": (
        b"GET /greeting/%E5%A4%AA%E9%83%8E HTTP/1.1\r\n" + H + b"\r\n",
        [req("GET", "/greeting/%E5%A4%AA%E9%83%8E", [HOST], path="/greeting/太郎"), end(), CLOSED],
        None,
    ),
    "raw_utf8_in_target": (
        b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n",
        [req("GET", "/caf\xc3\xa9", [HOST], path="/café"), end(), CLOSED],
        None,
    ),
    "host_empty": (
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        [req("GET", "/", [("Host", "")]), end(), CLOSED],
        None,
    ),
    "host_ipv6_and_port": (
        b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        [req("GET", "/", [("Host", "[::1]:8080")]), end(), CLOSED],
        None,
    ),
    "expect_100_continue": (
        b"PUT / HTTP/1.1\r\n" + H + b"Expect: 100-Continue\r\nContent-Length: 1\r\n\r\nx",
        [
            req(
                "PUT",
                "/",
                [HOST, ("Expect", "100-Continue"), ("Content-Length", "1")],
                framing="length",
                content_length=1,
                expect_continue=True,
            ),
            data("x"),
            end(),
            CLOSED,
        ],
        None,
    ),
    "expect_ignored_in_http10": (
        b"GET / HTTP/1.0\r\nExpect: something-else\r\n\r\n",
        [
            req("GET", "/", [("Expect", "something-else")], version="1.0", keep_alive=False),
            end(),
            CLOSED,
        ],
        None,
    ),
    "fields_at_their_limits": (
        b"GET /abcdef HTTP/1.1\r\nHost: a\r\nX-1: 12345678\r\nX-2: b\r\n\r\n",
        [req("GET", "/abcdef", [("Host", "a"), ("X-1", "12345678"), ("X-2", "b")]), end(), CLOSED],
        # request line 22 bytes with CRLF, longest field line 13 without, 3 fields
        {"max_request_line_bytes": 22, "max_field_bytes": 13, "max_fields": 3},
    ),
    "head_at_its_limit": (
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        [req("GET", "/", [("Host", "a")]), end(), CLOSED],
        {"max_header_bytes": 27},
    ),
    "chunked_body_at_its_limit": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        [
            req("POST", "/", [("Host", "a"), ("Transfer-Encoding", "chunked")], framing="chunked"),
            data("abcde"),
            end(),
            CLOSED,
        ],
        {"max_body_bytes": 5},
    ),
}


def write(directory: Path, name: str, raw: bytes, meta: dict[str, Any]) -> None:
    (directory / f"{name}.http").write_bytes(raw)
    text = json.dumps(meta, indent=1, ensure_ascii=False) + "\n"
    (directory / f"{name}.json").write_text(text, encoding="utf-8")


def expected_files() -> dict[str, bytes]:
    """Every corpus file this generator writes, by path relative to the corpus, as bytes."""
    out: dict[str, bytes] = {}
    for name, (raw, events, limits) in VALID.items():
        meta: dict[str, Any] = {"events": events}
        if limits:
            meta["limits"] = limits
        out[f"valid/{name}.http"] = raw
        out[f"valid/{name}.json"] = _json(meta)
    for name, (raw, status, limits) in INVALID.items():
        meta = {"status": status}
        if limits:
            meta["limits"] = limits
        out[f"invalid/{name}.http"] = raw
        out[f"invalid/{name}.json"] = _json(meta)
    return out


def _json(meta: dict[str, Any]) -> bytes:
    return (json.dumps(meta, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def main() -> None:
    for sub in ("valid", "invalid"):
        (HERE / sub).mkdir(exist_ok=True)
        for old in (HERE / sub).iterdir():
            old.unlink()
    for rel, content in expected_files().items():
        (HERE / rel).write_bytes(content)


if __name__ == "__main__":
    main()
