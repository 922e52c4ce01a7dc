"""Writes the request corpus: ``valid/NAME.http`` + ``.json`` and ``invalid/NAME.http`` + ``.json``.

Run from the project root:  python tests/corpus/generate.py

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

# name -> (raw bytes, status_hint, limits or None)
TE_CHUNKED = b"Transfer-Encoding: chunked\r\n"
CHUNKED_POST = b"POST / HTTP/1.1\r\n" + H + TE_CHUNKED + b"\r\n"
INVALID: dict[str, tuple[bytes, int, dict[str, int] | None]] = {
    # --- request line (RFC 9112 §3)
    "request_line_double_space": (b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "request_line_tab_separator": (b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "request_line_no_version": (b"GET /\r\n" + H + b"\r\n", 400, None),
    "request_line_http09": (b"GET /\r\n\r\n", 400, None),
    "request_line_lowercase_version": (b"GET / http/1.1\r\n" + H + b"\r\n", 400, None),
    "request_line_space_in_target": (b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "request_line_nul_in_target": (b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "request_line_bare_lf": (b"GET / HTTP/1.1\n" + H + b"\r\n", 400, None),
    "request_line_bad_method": (b"G(T / HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "request_line_bad_method_long": (
        b"G\x01T /" + b"a" * 200 + b" HTTP/1.1\r\n\r\n",
        400,
        {"max_request_line_bytes": 64},
    ),
    "request_line_too_long": (
        b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n" + H + b"\r\n",
        414,
        {"max_request_line_bytes": 64},
    ),
    "request_line_endless": (b"GET /" + b"a" * 100, 414, {"max_request_line_bytes": 64}),
    "version_1_2": (b"GET / HTTP/1.2\r\n" + H + b"\r\n", 505, None),
    "version_2_0": (b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505, None),
    "version_0_9": (b"GET / HTTP/0.9\r\n\r\n", 505, None),
    "http2_preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, None),
    "tls_client_hello": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400, None),
    "garbage_line": (b"this is not a http request.\r\n\r\n", 400, None),
    "lone_cr_before_request": (b"\r\r\nGET / HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    # --- fields (RFC 9112 §5, RFC 9110 §5.5)
    "space_before_colon": (b"GET / HTTP/1.1\r\nHost : example.com\r\n\r\n", 400, None),
    "tab_before_colon": (b"GET / HTTP/1.1\r\n" + H + b"X-A\t: b\r\n\r\n", 400, None),
    "empty_header_name": (b"GET / HTTP/1.1\r\n" + H + b": value\r\n\r\n", 400, None),
    "header_without_colon": (b"GET / HTTP/1.1\r\n" + H + b"NoColon\r\n\r\n", 400, None),
    "header_name_bad_char": (b"GET / HTTP/1.1\r\n" + H + b"X(y): 1\r\n\r\n", 400, None),
    "header_name_utf8": (b"GET / HTTP/1.1\r\n" + H + b"X-\xc3\xa9: 1\r\n\r\n", 400, None),
    "obs_fold": (b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n", 400, None),
    "obs_fold_first_line": (b"GET / HTTP/1.1\r\n " + H + b"\r\n", 400, None),
    "nul_in_value": (b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400, None),
    "nul_in_name": (b"GET / HTTP/1.1\r\n" + H + b"X\x00A: b\r\n\r\n", 400, None),
    "ctl_in_value": (b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", 400, None),
    "del_in_value": (b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n", 400, None),
    "bare_cr_in_value": (b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400, None),
    "bare_cr_line_end": (b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\r\n\r\n", 400, None),
    "bare_lf_line_endings": (b"GET / HTTP/1.1\r\nHost: example.com\nX-A: b\n\n", 400, None),
    "bare_lf_head_end": (b"GET / HTTP/1.1\r\n" + H + b"\n", 400, None),
    # --- Host (RFC 9112 §3.2)
    "host_missing": (b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400, None),
    "host_twice": (b"GET / HTTP/1.1\r\n" + H + H + b"\r\n", 400, None),
    "host_twice_different_case": (b"GET / HTTP/1.1\r\n" + H + b"host: other\r\n\r\n", 400, None),
    "host_twice_in_http10": (b"GET / HTTP/1.0\r\n" + H + H + b"\r\n", 400, None),
    "host_with_space": (b"GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n", 400, None),
    "host_with_path": (b"GET / HTTP/1.1\r\nHost: example.com/x\r\n\r\n", 400, None),
    "host_with_userinfo": (b"GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n", 400, None),
    # --- framing and smuggling (RFC 9112 §6)
    "cl_and_te": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4\r\n" + TE_CHUNKED + b"\r\n0\r\n\r\n",
        400,
        None,
    ),
    "te_and_cl": (
        b"POST / HTTP/1.1\r\n" + H + TE_CHUNKED + b"Content-Length: 4\r\n\r\n0\r\n\r\n",
        400,
        None,
    ),
    "te_obs_fold": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
        400,
        None,
    ),
    "te_space_before_colon": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        400,
        None,
    ),
    "te_chunked_twice_one_line": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        400,
        None,
    ),
    "te_chunked_twice_two_lines": (
        b"POST / HTTP/1.1\r\n" + H + TE_CHUNKED + TE_CHUNKED + b"\r\n0\r\n\r\n",
        400,
        None,
    ),
    "te_in_http10": (
        b"POST / HTTP/1.0\r\n" + TE_CHUNKED + b"\r\n0\r\n\r\n",
        400,
        None,
    ),
    "te_gzip": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 501, None),
    "te_identity": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n", 501, None),
    "te_gzip_then_chunked": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
        None,
    ),
    "te_chunked_not_final": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
        400,
        None,
    ),
    "te_empty": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n\r\n", 400, None),
    "te_vertical_tab": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
        400,
        None,
    ),
    "cl_plus": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", 400, None),
    "cl_negative": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400, None),
    "cl_hex": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello", 400, None),
    "cl_underscore": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1_000\r\n\r\n", 400, None),
    "cl_inner_space": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 0\r\n\r\n", 400, None),
    "cl_empty": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length:\r\n\r\n", 400, None),
    "cl_trailing_comma": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5,\r\n\r\nhello",
        400,
        None,
    ),
    "cl_list_differing": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 6\r\n\r\n", 400, None),
    "cl_duplicate_differing": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
        None,
    ),
    "cl_duplicate_differing_case": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\ncontent-length: 6\r\n\r\nhello!",
        400,
        None,
    ),
    "cl_unicode_digit": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \xd9\xa5\r\n\r\nhello",
        400,
        None,
    ),
    "cl_too_many_digits": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n",
        413,
        None,
    ),
    "cl_over_body_limit": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 11\r\n\r\n",
        413,
        {"max_body_bytes": 10},
    ),
    "expect_unknown": (b"GET / HTTP/1.1\r\n" + H + b"Expect: teapot\r\n\r\n", 417, None),
    # --- chunked coding (RFC 9112 §7.1)
    "chunk_size_0x": (CHUNKED_POST + b"0x5\r\nhello\r\n0\r\n\r\n", 400, None),
    "chunk_size_negative": (CHUNKED_POST + b"-5\r\nhello\r\n0\r\n\r\n", 400, None),
    "chunk_size_missing": (CHUNKED_POST + b"\r\nhello\r\n0\r\n\r\n", 400, None),
    "chunk_size_leading_space": (CHUNKED_POST + b" 5\r\nhello\r\n0\r\n\r\n", 400, None),
    "chunk_size_overflow": (CHUNKED_POST + b"ffffffffffffffffffff\r\nhello\r\n", 413, None),
    "chunk_size_bare_lf": (CHUNKED_POST + b"5\nhello\r\n0\r\n\r\n", 400, None),
    "chunk_data_missing_crlf": (CHUNKED_POST + b"5\r\nhelloX0\r\n\r\n", 400, None),
    "chunk_data_bare_lf": (CHUNKED_POST + b"5\r\nhello\n0\r\n\r\n", 400, None),
    "chunk_data_too_long": (CHUNKED_POST + b"3\r\nhello\r\n0\r\n\r\n", 400, None),
    "chunk_ext_no_name": (CHUNKED_POST + b"5;=x\r\nhello\r\n0\r\n\r\n", 400, None),
    "chunk_ext_bad_quoting": (CHUNKED_POST + b'5;a="x\r\nhello\r\n0\r\n\r\n', 400, None),
    "chunk_ext_nul": (CHUNKED_POST + b"5;a=\x00\r\nhello\r\n0\r\n\r\n", 400, None),
    "chunk_line_too_long": (
        CHUNKED_POST + b"5;" + b"a" * 100 + b"\r\nhello\r\n0\r\n\r\n",
        400,
        {"max_chunk_line_bytes": 64},
    ),
    "chunk_line_endless": (CHUNKED_POST + b"5;" + b"a" * 100, 400, {"max_chunk_line_bytes": 64}),
    "chunked_over_body_limit": (
        CHUNKED_POST + b"4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n",
        413,
        {"max_body_bytes": 6},
    ),
    "trailer_space_before_colon": (CHUNKED_POST + b"0\r\nX-T : 1\r\n\r\n", 400, None),
    "trailer_obs_fold": (CHUNKED_POST + b"0\r\nX-T: 1\r\n 2\r\n\r\n", 400, None),
    "trailer_nul": (CHUNKED_POST + b"0\r\nX-T: \x00\r\n\r\n", 400, None),
    "trailer_bare_lf": (CHUNKED_POST + b"0\r\nX-T: 1\n\r\n", 400, None),
    "trailer_too_many": (
        CHUNKED_POST + b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        431,
        {"max_fields": 2},
    ),
    "trailer_field_too_long": (
        CHUNKED_POST + b"0\r\nX-T: " + b"a" * 100 + b"\r\n\r\n",
        431,
        {"max_field_bytes": 64},
    ),
    # --- limits
    "field_too_long": (
        b"GET / HTTP/1.1\r\n" + H + b"X-Long: " + b"a" * 60 + b"\r\n\r\n",
        431,
        {"max_field_bytes": 64},
    ),
    "field_too_long_slow_path": (
        b"GET / HTTP/1.1\r\n" + H + b"x-lOnG: " + b"a" * 60 + b"\r\n\r\n",
        431,
        {"max_field_bytes": 64},
    ),
    "too_many_fields": (
        b"GET / HTTP/1.1\r\n" + H + b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        431,
        {"max_fields": 3},
    ),
    "head_too_large": (
        b"GET / HTTP/1.1\r\n" + H + b"X-A: " + b"b" * 200 + b"\r\n\r\n",
        431,
        {"max_header_bytes": 128},
    ),
    "head_endless": (
        b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n" * 40,
        431,
        {"max_header_bytes": 128},
    ),
    "crlf_flood": (b"\r\n" * 100, 431, {"max_header_bytes": 128}),
    # --- end of stream in the middle of a message
    "eof_in_request_line": (b"GET / HTT", 400, None),
    "eof_in_head": (b"GET / HTTP/1.1\r\n" + H, 400, None),
    "eof_in_length_body": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\nabc",
        400,
        None,
    ),
    "eof_in_chunked_body": (CHUNKED_POST + b"5\r\nhel", 400, None),
    "eof_in_trailers": (CHUNKED_POST + b"0\r\nX-T: 1\r\n", 400, None),
    # --- request-target forms (RFC 9112 §3.2) and percent-encoding (RFC 3986 §2.1)
    "target_relative": (b"GET foo HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "target_fragment": (b"GET /a#frag HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "target_asterisk_not_options": (b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "target_connect_origin_form": (b"CONNECT /x HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "target_connect_no_port": (b"CONNECT example.com HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "target_absolute_ftp": (b"GET ftp://example.com/ HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "target_absolute_no_authority": (b"GET http:///x HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "percent_bad_hex": (b"GET /a%zz HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "percent_truncated": (b"GET /a%2 HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    # --- a valid request, then a smuggled one that must not be read as a body
    "pipelined_then_bad": (
        b"GET / HTTP/1.1\r\n" + H + b"\r\nGET / HTTP/1.1\r\nHost : evil\r\n\r\n",
        400,
        None,
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
