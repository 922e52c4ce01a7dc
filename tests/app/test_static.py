"""Static files: content types, validators and 304s, single ranges (206/416), and every way
out of the directory refused, in-process and through kakehashi's server with real clients."""

from __future__ import annotations

import email.utils
import http.client
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kakehashi.app import App, Client, Request, send_file
from kakehashi.errors import ConfigError
from tests.conftest import StartServer, addr

SECRET = b"TOP SECRET"
DATA = bytes(range(256)) * 1024  # 256 KiB: large enough that sendfile matters


@pytest.fixture
def public(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_bytes(SECRET)
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "hello.txt").write_text("hello, static\n")
    (public / "style.css").write_text("body { color: red }\n")
    (public / "data.bin").write_bytes(DATA)
    (public / "archive.tar.gz").write_bytes(b"\x1f\x8b")
    (public / "empty.txt").write_bytes(b"")
    (public / "sub" / "page.html").write_text("<p>hi</p>\n")
    (public / "link-in").symlink_to("hello.txt")
    (public / "link-out").symlink_to(tmp_path / "secret.txt")
    (public / "dir-out").symlink_to(tmp_path)
    os.mkfifo(public / "fifo")
    return public


@pytest.fixture
def app(public: Path) -> App:
    app = App()
    app.static("/static", public)
    app.static("/cached", public, endpoint="cached", max_age=3600)

    @app.get("/download")
    def download(req: Request) -> Any:
        return send_file(req, public / "hello.txt")

    return app


def test_serves_files_with_their_type_and_validators(client: Client, public: Path) -> None:
    response = client.get("/static/hello.txt")
    assert (response.status, response.body) == (200, b"hello, static\n")
    headers = response.headers
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Length"] == "14"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Cache-Control"] == "no-cache"
    mtime = (public / "hello.txt").stat().st_mtime
    assert headers["Last-Modified"] == email.utils.formatdate(int(mtime), usegmt=True)
    assert headers["ETag"].startswith('"e-')
    assert client.get("/static/style.css").headers["Content-Type"] == "text/css; charset=utf-8"
    assert client.get("/static/sub/page.html").body == b"<p>hi</p>\n"
    assert client.get("/static/data.bin").body == DATA
    gz = client.get("/static/archive.tar.gz").headers["Content-Type"]
    assert gz == "application/octet-stream"  # not "application/x-tar": it is compressed
    assert client.get("/static/empty.txt").body == b""
    assert client.get("/static/link-in").body == b"hello, static\n"
    assert client.get("/cached/hello.txt").headers["Cache-Control"] == "public, max-age=3600"
    assert client.get("/download").body == b"hello, static\n"


def test_head_and_url_for(app: App, client: Client) -> None:
    response = client.head("/static/data.bin")
    assert (response.status, response.body) == (200, b"")
    assert response.headers["Content-Length"] == str(len(DATA))
    assert app.url_for("static", filename="sub/page.html") == "/static/sub/page.html"
    assert client.post("/static/hello.txt").status == 405


def test_if_none_match_and_if_modified_since_give_304(client: Client) -> None:
    first = client.get("/static/hello.txt")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"other", W/{etag}'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": modified},
        {"If-Modified-Since": email.utils.formatdate(2_000_000_000, usegmt=True)},
    ):
        response = client.get("/static/hello.txt", headers=headers)
        assert (response.status, response.body) == (304, b""), headers
        assert response.headers["ETag"] == etag
        assert "Content-Type" not in response.headers
    for headers in (
        {"If-None-Match": '"other"'},
        {"If-None-Match": '"other"', "If-Modified-Since": modified},  # the etag decides
        {"If-Modified-Since": email.utils.formatdate(1_000_000, usegmt=True)},
        {"If-Modified-Since": "not a date"},
    ):
        assert client.get("/static/hello.txt", headers=headers).status == 200, headers


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=1000-", 1000, len(DATA) - 1),
        ("bytes=-100", len(DATA) - 100, len(DATA) - 1),
        ("bytes=5-999999999", 5, len(DATA) - 1),
        ("bytes=-999999999", 0, len(DATA) - 1),
    ],
)
def test_a_single_range_gives_206(client: Client, spec: str, start: int, end: int) -> None:
    response = client.get("/static/data.bin", headers={"Range": spec})
    assert response.status == 206
    assert response.body == DATA[start : end + 1]
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response.headers["Content-Length"] == str(end - start + 1)


@pytest.mark.parametrize("spec", ["bytes=262144-", "bytes=999999-1000000", "bytes=-0"])
def test_an_unsatisfiable_range_gives_416(client: Client, spec: str) -> None:
    response = client.get("/static/data.bin", headers={"Range": spec})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"
    empty = client.get("/static/empty.txt", headers={"Range": "bytes=0-"})
    assert (empty.status, empty.headers["Content-Range"]) == (416, "bytes */0")


@pytest.mark.parametrize(
    "spec", ["bytes=0-1,5-6", "bytes=5-1", "items=0-1", "bytes=x-y", "bytes=-", "bytes 0-1"]
)
def test_other_ranges_are_ignored(client: Client, spec: str) -> None:
    response = client.get("/static/data.bin", headers={"Range": spec})
    assert (response.status, len(response.body)) == (200, len(DATA))


def test_if_range(client: Client) -> None:
    head = client.head("/static/data.bin").headers
    for validator, status in (
        (head["ETag"], 206),
        (head["Last-Modified"], 206),
        ('"stale"', 200),
        ("W/" + head["ETag"], 200),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 200),
    ):
        headers = {"Range": "bytes=0-9", "If-Range": validator}
        assert client.get("/static/data.bin", headers=headers).status == status, validator


TRAVERSALS = [
    "/static/../secret.txt",
    "/static/sub/../../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E%2Fsecret.txt",
    "/static/sub/%2e%2e/%2e%2e/secret.txt",
    "/static/..%5csecret.txt",
    "/static/hello.txt%00",
    "/static/%00../secret.txt",
    "/static/link-out",
    "/static/dir-out/secret.txt",
    "/static//etc/passwd",
    "/static/%2Fetc%2Fpasswd",
    "/static/./hello.txt",
    "/static/sub",
    "/static/fifo",
    "/static/missing.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_ways_out_of_the_directory_are_404(client: Client, target: str) -> None:
    response = client.get(target)
    assert response.status == 404, target
    assert SECRET not in response.body
    assert b"root:" not in response.body


def test_static_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        App().static("/static", tmp_path / "missing")
    with pytest.raises(ConfigError):
        App().static("/static", tmp_path, max_age=-1)


# --- through kakehashi's server ---------------------------------------------------------


def fetch(address: str, target: str, headers: dict[str, str] | None = None) -> Any:
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", target, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_served_with_sendfile_over_the_wire(
    app: App, start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    real_sendfile = os.sendfile

    def counting_sendfile(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        sent.append(count)
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    where = addr(start_server(app))
    status, headers, body = fetch(where, "/static/data.bin")
    assert (status, body) == (200, DATA)
    assert sent, "the file was not sent with sendfile"
    sent.clear()
    status, headers, body = fetch(where, "/static/data.bin", {"Range": "bytes=1000-1999"})
    assert (status, headers["Content-Range"], body) == (
        206,
        f"bytes 1000-1999/{len(DATA)}",
        DATA[1000:2000],
    )
    assert sent
    status, headers, body = fetch(where, "/static/data.bin", {"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    status, headers, _ = fetch(where, "/static/data.bin", {"Range": "bytes=300000-"})
    assert (status, headers["Content-Range"]) == (416, f"bytes */{len(DATA)}")


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_cannot_leave_the_directory(app: App, start_server: StartServer) -> None:
    where = addr(start_server(app))
    ok = subprocess.run(
        ["curl", "-s", f"http://{where}/static/hello.txt"], capture_output=True, timeout=10
    )
    assert ok.stdout == b"hello, static\n"
    for target in TRAVERSALS:
        result = subprocess.run(
            ["curl", "-s", "--path-as-is", "-w", "\n%{http_code}", f"http://{where}{target}"],
            capture_output=True,
            timeout=10,
        )
        body, _, code = result.stdout.rpartition(b"\n")
        assert code in (b"400", b"404"), (target, code)
        assert SECRET not in body, target
