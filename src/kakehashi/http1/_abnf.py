"""The HTTP/1.1 grammar as regular expressions, each next to the RFC rule it implements.

No I/O and no state here: only compiled patterns over ``bytes``. Every pattern is written so
that a match is linear in the input (no nested quantifiers that can backtrack badly), because
they run on bytes an attacker controls.
"""

from __future__ import annotations

import re

# RFC 9110 §5.6.2: token = 1*tchar
TCHAR = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]"
TOKEN = TCHAR + rb"+"

# RFC 9110 §5.5: field-vchar = VCHAR / obs-text; a value is words of field-vchar separated by
# SP / HTAB, and OWS around the value is not part of it (§5.6.3).  Written as "word (ws word)*"
# so that trailing whitespace backtracks by one step only.
FIELD_VCHAR = rb"[\x21-\x7e\x80-\xff]"
FIELD_VALUE = FIELD_VCHAR + rb"+(?:[ \t]+" + FIELD_VCHAR + rb"+)*"

# RFC 9112 §5: field-line = field-name ":" OWS field-value OWS.  No whitespace before the
# colon (§5.1) and no obs-fold (§5.2): both are refused, never repaired.
FIELD_LINE = rb"(" + TOKEN + rb"):[ \t]*(" + FIELD_VALUE + rb")?[ \t]*\r\n"
FIELD_LINE_RE = re.compile(FIELD_LINE)

# RFC 9112 §3: request-line = method SP request-target SP HTTP-version.  The target is any run
# of visible bytes; obs-text (raw UTF-8, as some tools send it) is accepted because it cannot
# change framing, and its exact form is checked later (origin, absolute, authority, asterisk).
REQUEST_LINE = rb"(" + TOKEN + rb") ([\x21-\x7e\x80-\xff]+) HTTP/([0-9])\.([0-9])\r\n"
REQUEST_LINE_RE = re.compile(REQUEST_LINE)


# RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
# reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ).  Some servers omit the space before an
# empty reason; that is accepted on the client side.  RFC 9110 §15: a status below 100 is
# invalid (it would otherwise pass for a 1xx); 600-999 are taken as final responses.
STATUS_LINE = rb"HTTP/([0-9])\.([0-9]) ([1-9][0-9]{2})(?: ([\t \x21-\x7e\x80-\xff]*))?\r\n"
STATUS_LINE_RE = re.compile(STATUS_LINE)

# RFC 9110 §5.5: CTLs are not allowed in a field (HTAB aside); CR and LF only end a line.
CTL_BYTES = bytes([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])

# The fields that decide framing and connection handling, by lower-cased name.
FRAMING_NAMES = frozenset(
    [b"host", b"content-length", b"transfer-encoding", b"connection", b"expect"]
)

# Field names as common clients spell them.  A head whose names are all in this set (which
# holds only valid tokens) skips per-name validation; any other spelling takes the slow path,
# so the set is a speed-up and never a rule.
_COMMON_NAMES = [
    b"Host",
    b"User-Agent",
    b"Accept",
    b"Accept-Language",
    b"Accept-Encoding",
    b"Accept-Charset",
    b"Connection",
    b"Keep-Alive",
    b"Cookie",
    b"Upgrade-Insecure-Requests",
    b"Cache-Control",
    b"Pragma",
    b"Referer",
    b"Origin",
    b"Content-Type",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Expect",
    b"Authorization",
    b"If-None-Match",
    b"If-Modified-Since",
    b"If-Match",
    b"If-Unmodified-Since",
    b"If-Range",
    b"Range",
    b"DNT",
    b"TE",
    b"Upgrade",
    b"Priority",
    b"Sec-Fetch-Dest",
    b"Sec-Fetch-Mode",
    b"Sec-Fetch-Site",
    b"Sec-Fetch-User",
    b"Sec-CH-UA",
    b"Sec-CH-UA-Mobile",
    b"Sec-CH-UA-Platform",
    b"Sec-GPC",
    b"X-Requested-With",
    b"X-Forwarded-For",
    b"X-Forwarded-Proto",
    b"X-Forwarded-Host",
    b"X-Real-IP",
    b"Forwarded",
    b"Via",
    b"Date",
    b"Server",
    b"Location",
    b"Set-Cookie",
    b"Content-Encoding",
    b"ETag",
    b"Last-Modified",
    b"Vary",
    b"Allow",
    b"Content-Disposition",
    b"Content-Language",
    b"Access-Control-Allow-Origin",
    b"Expires",
    b"Age",
    b"Retry-After",
    b"WWW-Authenticate",
    b"Strict-Transport-Security",
    b"X-Content-Type-Options",
    b"X-Frame-Options",
]
KNOWN_NAMES = frozenset(
    [*_COMMON_NAMES, *(n.lower() for n in _COMMON_NAMES), *(n.upper() for n in _COMMON_NAMES)]
)
FRAMING_SPELLINGS = frozenset(n for n in KNOWN_NAMES if n.lower() in FRAMING_NAMES)

# RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
# chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ); ext-val = token / quoted-string
# Whitespace is allowed only where BWS stands: never at the end of the line ("5 \r\n"), where
# a front end that reads the size differently could disagree on where the chunk ends.
QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
CHUNK_EXT = rb"(?:[ \t]*;[ \t]*" + TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + TOKEN + rb"|" + QUOTED_STRING
CHUNK_EXT += rb"))?)*"
CHUNK_HEADER_RE = re.compile(rb"([0-9A-Fa-f]+)(" + CHUNK_EXT + rb")\r\n")

# RFC 9112 §3.2: Host = uri-host [ ":" port ]; uri-host is an IP-literal or reg-name (RFC 3986
# §3.2.2, either case).  The same rule checks the authority of an absolute-form target.
HOST_RE = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~%!$&'()*+,;=]*)(?::[0-9]*)?")

# RFC 9110 §8.6: Content-Length = 1*DIGIT
DIGITS_RE = re.compile(rb"[0-9]+")

# RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG
PERCENT_RE = re.compile(rb"%([0-9A-Fa-f]{2})?")
