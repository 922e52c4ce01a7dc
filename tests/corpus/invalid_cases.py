"""The invalid half of the request corpus: raw bytes and the status_hint each must get.

Written by hand from the RFC sections named beside each group; see generate.py.
"""

from __future__ import annotations

H = b"Host: example.com\r\n"

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
    "chunk_size_trailing_space": (CHUNKED_POST + b"5 \r\nhello\r\n0\r\n\r\n", 400, None),
    "chunk_size_trailing_tab": (CHUNKED_POST + b"5\t\r\nhello\r\n0\r\n\r\n", 400, None),
    "chunk_ext_trailing_space": (CHUNKED_POST + b"5;a=b \r\nhello\r\n0\r\n\r\n", 400, None),
    "last_chunk_trailing_space": (CHUNKED_POST + b"5\r\nhello\r\n0 \r\n\r\n", 400, None),
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
    "percent_nul_in_path": (b"GET /a%00.png HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "target_absolute_userinfo": (b"GET http://u@example/ HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "target_absolute_password": (b"GET http://u:p@example/ HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    "target_absolute_bad_host": (b"GET http://a<b/ HTTP/1.1\r\n" + H + b"\r\n", 400, None),
    # --- a valid request, then a smuggled one that must not be read as a body
    "pipelined_then_bad": (
        b"GET / HTTP/1.1\r\n" + H + b"\r\nGET / HTTP/1.1\r\nHost : evil\r\n\r\n",
        400,
        None,
    ),
}
