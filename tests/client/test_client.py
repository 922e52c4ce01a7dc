"""The client's exchange over an in-memory stream: framing, reuse, errors, bodies, redirects."""

from __future__ import annotations

import builtins
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.client import URL, Client, Headers, Pool, Timeout, Transport
from kakehashi.errors import (
    ConnectError,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TooManyRedirects,
    WriteError,
)
from tests.client.memory import MemoryBackend, MemoryStream, memory_client, ok

pytestmark = pytest.mark.timeout(10)

BASE = "http://example.test"


# --- the request on the wire ---------------------------------------------------------------


def test_get_writes_an_exact_request_and_reads_the_response() -> None:
    stream = MemoryStream([ok(b"hello", b"Set-Cookie: a=1", b"set-cookie: b=2")])
    with memory_client(stream) as client:
        r = client.get(BASE + "/path?q=1")
    assert bytes(stream.written) == (
        b"GET /path?q=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: kakehashi/0.1\r\n"
        b"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n\r\n"
    )
    assert (r.status, r.reason, r.http_version, r.body) == (200, "OK", "1.1", b"hello")
    assert r.headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    assert r.headers["set-cookie"] == "a=1, b=2"
    assert r.request_head == bytes(stream.written)
    assert r.ok and r.text == "hello"


def test_host_carries_a_non_default_port_and_user_fields_override_defaults() -> None:
    stream = MemoryStream([ok()])
    with memory_client(stream, headers={"X-Default": "1"}) as client:
        client.get("http://[::1]:8080/", headers=[("user-agent", "me"), ("X-A", "1")])
    head = bytes(stream.written)
    assert b"Host: [::1]:8080\r\n" in head
    assert b"user-agent: me\r\n" in head and b"kakehashi/0.1" not in head
    assert b"X-Default: 1\r\nuser-agent: me\r\nX-A: 1\r\n" in head


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"abc", b"Content-Length: 3\r\n\r\nabc"),
        ("h\u00e9", b"Content-Length: 3\r\n\r\nh\xc3\xa9"),
        (
            iter([b"ab", b"", b"cde"]),
            b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n",
        ),
        (io.BytesIO(b"xyz"), b"Transfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"),
        (None, b"Content-Length: 0\r\n\r\n"),
    ],
)
def test_post_bodies_are_framed_by_what_is_known(body: object, expected: bytes) -> None:
    stream = MemoryStream([ok()])
    with memory_client(stream) as client:
        client.post(BASE + "/", body=body)  # type: ignore[arg-type]
    assert bytes(stream.written).endswith(b"Accept-Encoding: gzip, deflate\r\n" + expected)


def test_a_file_body_is_sent_with_its_length(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789" * 10000)
    stream = MemoryStream([ok()])
    with memory_client(stream) as client, path.open("rb") as f:
        f.seek(10)
        client.put(BASE + "/up", body=f)
    head, _, body = bytes(stream.written).partition(b"\r\n\r\n")
    assert b"Content-Length: 99990" in head
    assert body == path.read_bytes()[10:]


def test_a_given_content_length_frames_an_iterator_body() -> None:
    stream = MemoryStream([ok()])
    with memory_client(stream) as client:
        client.post(BASE + "/", body=iter([b"ab", b"c"]), headers={"Content-Length": "3"})
    assert bytes(stream.written).endswith(b"Content-Length: 3\r\n\r\nabc")


def test_both_framing_fields_are_refused() -> None:
    fields = {"Content-Length": "1", "Transfer-Encoding": "chunked"}
    with memory_client() as client, pytest.raises(ValueError):
        client.post(BASE + "/", body=b"x", headers=fields)


def test_get_without_body_sends_no_framing_fields() -> None:
    stream = MemoryStream([ok()])
    with memory_client(stream) as client:
        client.get(BASE + "/")
    assert b"Content-Length" not in stream.written and b"Transfer-Encoding" not in stream.written


# --- response framing ----------------------------------------------------------------------


def test_chunked_response_with_trailers() -> None:
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    with memory_client(MemoryStream([wire[:30], wire[30:41], wire[41:]])) as client:
        assert client.get(BASE + "/").body == b"hello world"


def test_close_delimited_http10_body_and_no_reuse() -> None:
    first = MemoryStream([b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\npart one,", b" part two"])
    second = MemoryStream([ok(b"again")])
    with memory_client(first, second) as client:
        r = client.get(BASE + "/")
        assert (r.http_version, r.body) == ("1.0", b"part one, part two")
        assert first.closed
        assert client.get(BASE + "/").body == b"again"
        assert client.transport.connections_opened == 2


@pytest.mark.parametrize(
    ("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304), ("HEAD", 404)]
)
def test_no_body_for_head_204_304_even_with_a_content_length(method: str, status: int) -> None:
    wire = b"HTTP/1.1 %d X\r\nContent-Length: 100\r\n\r\n" % status
    stream = MemoryStream([wire, ok(b"next")])
    with memory_client(stream) as client:
        r = client.request(method, BASE + "/")
        assert (r.status, r.body, r.headers["content-length"]) == (status, b"", "100")
        second = client.get(BASE + "/")
    assert second.body == b"next" and second.reused


def test_interim_100_continue_is_skipped() -> None:
    wire = b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"done")
    with memory_client(MemoryStream([wire])) as client:
        assert client.post(BASE + "/", body=b"x").body == b"done"


# --- keep-alive ----------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection_per_origin() -> None:
    one = MemoryStream([ok(b"1"), ok(b"2"), ok(b"3")])
    other = MemoryStream([ok(b"other")])
    backend = MemoryBackend(one, other)
    with Client(transport=Transport(connect=backend), timeout=1) as client:
        rs = [client.get(BASE + "/a"), client.get(BASE + "/b"), client.get(BASE + ":81/")]
        rs.append(client.get(BASE + "/c"))
    assert [r.body for r in rs] == [b"1", b"2", b"other", b"3"]
    assert [r.reused for r in rs] == [False, True, False, True]
    assert rs[0].connection_id == rs[1].connection_id == rs[3].connection_id
    assert rs[2].connection_id != rs[0].connection_id
    assert backend.origins == [("http", "example.test", 80), ("http", "example.test", 81)]
    assert one.closed and other.closed  # Client.close() closed the idle connections


def test_connection_close_from_the_server_is_honoured() -> None:
    first = MemoryStream([ok(b"bye", b"Connection: close")])
    second = MemoryStream([ok(b"new")])
    with memory_client(first, second) as client:
        client.get(BASE + "/")
        assert first.closed
        assert client.get(BASE + "/").reused is False


def test_our_connection_close_is_honoured() -> None:
    first, second = MemoryStream([ok()]), MemoryStream([ok()])
    with memory_client(first, second) as client:
        client.get(BASE + "/", headers={"Connection": "close"})
        assert first.closed


def test_bytes_after_the_response_make_the_connection_unusable() -> None:
    first = MemoryStream([ok(b"x") + b"garbage"])
    second = MemoryStream([ok(b"y")])
    with memory_client(first, second) as client:
        assert client.get(BASE + "/").body == b"x"
        assert first.closed
        assert client.get(BASE + "/").body == b"y"


def test_a_stale_idle_connection_is_retried_once_on_a_new_one() -> None:
    stale = MemoryStream([ok(b"1")])  # then b"": the server closed while idle
    fresh = MemoryStream([ok(b"2")])
    with memory_client(stale, fresh) as client:
        client.get(BASE + "/")
        r = client.get(BASE + "/")
    assert (r.body, r.reused, client.transport.connections_opened) == (b"2", False, 2)


def test_a_readable_idle_connection_is_dropped_before_use() -> None:
    stale = MemoryStream([ok(b"1")])
    fresh = MemoryStream([ok(b"2")])
    with memory_client(stale, fresh) as client:
        client.get(BASE + "/")
        stale.readable = True
        assert client.get(BASE + "/").body == b"2"
    assert stale.closed and stale.written.count(b"GET") == 1


def test_no_retry_when_the_body_cannot_be_sent_again() -> None:
    stale = MemoryStream([ok(b"1")])
    with memory_client(stale) as client:
        client.get(BASE + "/")
        with pytest.raises(ReadError, match="without sending a response"):
            client.post(BASE + "/", body=iter([b"once"]))


def test_no_retry_on_a_fresh_connection() -> None:
    with memory_client(MemoryStream([])) as client, pytest.raises(ReadError):
        client.get(BASE + "/")


# --- errors --------------------------------------------------------------------------------


def test_a_body_cut_short_raises_read_error_never_a_short_body() -> None:
    stream = MemoryStream([b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789"])
    with memory_client(stream) as client, pytest.raises(ReadError) as info:
        client.get(BASE + "/")
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value.__cause__, RemoteProtocolError)
    assert "990 bytes of the body missing" in str(info.value)
    assert stream.closed


def test_a_chunked_body_cut_short_raises_read_error() -> None:
    stream = MemoryStream([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"])
    with memory_client(stream) as client, pytest.raises(ReadError):
        client.get(BASE + "/")


def test_a_head_cut_short_raises_read_error() -> None:
    stream = MemoryStream([b"HTTP/1.1 200 OK\r\nContent-"])
    with memory_client(stream) as client, pytest.raises(ReadError, match="message head"):
        client.get(BASE + "/")


def test_a_malformed_response_raises_remote_protocol_error() -> None:
    stream = MemoryStream([b"HTTP/1.1 2000 OK\r\n\r\n"])
    with memory_client(stream) as client, pytest.raises(RemoteProtocolError):
        client.get(BASE + "/")
    assert stream.closed


def test_garbage_instead_of_a_response() -> None:
    stream = MemoryStream([b"SSH-2.0-OpenSSH_9.2\r\n\r\n"])
    with memory_client(stream) as client, pytest.raises(RemoteProtocolError, match="status"):
        client.get(BASE + "/")


def test_a_read_timeout_is_also_a_builtin_timeout_error() -> None:
    stream = MemoryStream([ReadTimeout("silent")])
    with memory_client(stream) as client, pytest.raises(builtins.TimeoutError):
        client.get(BASE + "/")
    assert stream.closed


def test_a_read_timeout_in_the_middle_of_a_body() -> None:
    stream = MemoryStream([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", ReadTimeout("x")])
    with memory_client(stream) as client, pytest.raises(ReadTimeout):
        client.get(BASE + "/")


def test_a_write_error_without_an_answer_is_reported() -> None:
    stream = MemoryStream([], write_error=WriteError("broken pipe"))
    with memory_client(stream) as client, pytest.raises(WriteError):
        client.post(BASE + "/", body=b"x")


def test_an_answer_sent_before_the_write_failed_is_returned() -> None:
    wire = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    stream = MemoryStream([wire], write_error=WriteError("reset"))
    with memory_client(stream) as client:
        assert client.post(BASE + "/", body=b"x" * 100).status == 413
    assert stream.closed


def test_connect_errors_propagate() -> None:
    def refuse(*args: object) -> MemoryStream:
        raise ConnectError("refused")

    client = Client(transport=Transport(connect=refuse), timeout=1)
    with client, pytest.raises(ConnectionError):
        client.get(BASE + "/")


def test_pool_timeout_when_every_connection_is_busy() -> None:
    busy = MemoryStream([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"])
    client = memory_client(busy, pool=Pool(max_per_origin=1), timeout=Timeout(1, 1, 1, 0.05))
    with client, client.stream("GET", BASE + "/") as held:
        with pytest.raises(PoolTimeout):
            client.get(BASE + "/")
        assert held.status == 200


# --- streaming -----------------------------------------------------------------------------


def test_streaming_reads_pieces_and_releases_at_the_end() -> None:
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    pieces = [wire, b"3\r\nabc\r\n", b"3\r\ndef\r\n", b"0\r\n\r\n", ok(b"next")]
    stream = MemoryStream(pieces)
    with memory_client(stream) as client:
        with client.stream("GET", BASE + "/") as r:
            assert list(r.iter_bytes()) == [b"abc", b"def"]
            assert "total" in r.timings
        assert client.transport.pool.idle_count() == 1
        assert client.get(BASE + "/").reused


def test_abandoning_a_streamed_body_closes_the_connection() -> None:
    stream = MemoryStream([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", b"defghij"])
    with memory_client(stream) as client:
        with client.stream("GET", BASE + "/") as r:
            assert next(r.iter_bytes()) == b"abc"
        assert stream.closed
        with pytest.raises(RuntimeError):
            r.read()


def test_read_twice_gives_the_same_body() -> None:
    with memory_client(MemoryStream([ok(b"abc")])) as client:
        r = client.get(BASE + "/")
    assert r.read() == r.read() == b"abc"
    assert list(r.iter_bytes()) == [b"abc"]


# --- redirects -----------------------------------------------------------------------------


def _redirect(status: int, location: str) -> bytes:
    return b"HTTP/1.1 %d R\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % (
        status,
        location.encode(),
    )


def test_redirects_are_not_followed_unless_asked() -> None:
    with memory_client(MemoryStream([_redirect(302, "/b")])) as client:
        assert client.get(BASE + "/a").status == 302


def test_303_turns_post_into_get_without_body() -> None:
    stream = MemoryStream([_redirect(303, "/b"), ok(b"final")])
    with memory_client(stream, follow_redirects=True) as client:
        r = client.post(BASE + "/a", body=b"data", headers={"Content-Type": "text/plain"})
    assert (r.body, r.url, [h.status for h in r.history]) == (b"final", BASE + "/b", [303])
    second = bytes(stream.written).split(b"\r\n\r\n", 1)[1]
    assert second.startswith(b"data") and second[4:].startswith(b"GET /b HTTP/1.1")
    assert b"Content-Type" not in second[4:] and b"Content-Length" not in second[4:]


def test_307_resends_method_and_body() -> None:
    stream = MemoryStream([_redirect(307, "/b"), ok()])
    with memory_client(stream, follow_redirects=True) as client:
        client.put(BASE + "/a", body=b"data")
    assert bytes(stream.written).count(b"Content-Length: 4\r\n\r\ndata") == 2
    assert b"PUT /b" in stream.written


def test_307_with_a_one_shot_body_stops_following() -> None:
    with memory_client(MemoryStream([_redirect(307, "/b")]), follow_redirects=True) as c:
        assert c.post(BASE + "/a", body=iter([b"x"])).status == 307


def test_cross_origin_redirect_drops_credentials() -> None:
    a = MemoryStream([_redirect(302, "http://other.test/x")])
    b = MemoryStream([ok()])
    with memory_client(a, b, follow_redirects=True) as client:
        client.get(BASE + "/", headers={"Authorization": "secret", "X-Keep": "1"})
    assert b"secret" in a.written and b"secret" not in b.written
    assert b"X-Keep: 1" in b.written and b"Host: other.test\r\n" in b.written


def test_too_many_redirects() -> None:
    stream = MemoryStream([_redirect(302, "/loop")] * 4)
    client = memory_client(stream, follow_redirects=True, max_redirects=2)
    with client, pytest.raises(TooManyRedirects):
        client.get(BASE + "/loop")


# --- values --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 0, -1, float("inf"), float("nan"), "5", True])
def test_a_timeout_is_always_finite_and_positive(value: object) -> None:
    with pytest.raises(ValueError):
        Timeout.of(value)  # type: ignore[arg-type]


def test_client_refuses_a_missing_timeout() -> None:
    with pytest.raises(ValueError):
        Client(timeout=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "origin", "target", "authority"),
    [
        ("http://a.test", ("http", "a.test", 80), "/", "a.test"),
        ("https://A.test:8443/x?y=1", ("https", "a.test", 8443), "/x?y=1", "a.test:8443"),
        ("http://[::1]:80/", ("http", "::1", 80), "/", "[::1]"),
        ("http://h/greeting/太郎", ("http", "h", 80), "/greeting/%E5%A4%AA%E9%83%8E", "h"),
        ("http://h/a b#frag", ("http", "h", 80), "/a%20b", "h"),
    ],
)
def test_url_parsing(url: str, origin: tuple[str, str, int], target: str, authority: str) -> None:
    parsed = URL.parse(url)
    assert (parsed.origin, parsed.target, parsed.authority) == (origin, target, authority)


@pytest.mark.parametrize(
    "url", ["ftp://h/", "http:///x", "/relative", "http://u:p@h/", "http://h:x/"]
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        URL.parse(url)


def test_headers_are_ordered_case_insensitive_and_keep_repeats() -> None:
    h = Headers([(b"A", b"1"), ("b", "2"), ("a", "3")])
    assert list(h) == [("A", "1"), ("b", "2"), ("a", "3")]
    assert (h["a"], h.get_all("A"), h.get("c", "d"), len(h)) == ("1, 3", ["1", "3"], "d", 3)
    assert "B" in h and "c" not in h and 1 not in h
    with pytest.raises(KeyError):
        h["c"]


def test_text_uses_the_declared_charset() -> None:
    wire = ok("é".encode("latin-1"), b"Content-Type: text/plain; charset=ISO-8859-1")
    with memory_client(MemoryStream([wire])) as client:
        assert client.get(BASE + "/").text == "é"


def test_module_functions_use_a_fresh_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from kakehashi.client import api, exchange

    stream = MemoryStream([ok(b"one-shot")])

    def fake_connect(*args: object) -> MemoryStream:
        return stream

    monkeypatch.setattr(exchange, "connect_socket", fake_connect)
    assert api.get(BASE + "/").body == b"one-shot"
    assert stream.closed


def _gen() -> Iterator[bytes]:
    yield b"x"
    yield 5  # type: ignore[misc]


def test_an_iterator_yielding_non_bytes_is_refused() -> None:
    with memory_client(MemoryStream([ok()])) as client, pytest.raises(TypeError):
        client.post(BASE + "/", body=_gen())
