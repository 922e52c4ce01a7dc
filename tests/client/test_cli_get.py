"""``kakehashi get`` against an in-process http.server: body, head, verbose, data, exit codes."""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kakehashi.cli import main
from kakehashi.server import Server
from tests.client import flask_app
from tests.client.proxy_server import proxy_server
from tests.client.servers import (
    LARGE,
    free_port,
    http_server,
    raw_server,
    self_signed_cert,
    server_context,
    silent,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with http_server() as url:
        yield url


def test_prints_exactly_the_body(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", base + "/"]) == 0
    out, err = capsysbinary.readouterr()
    assert (out, err) == (b"Hello, World", b"")


def test_large_binary_body_is_written_unchanged(
    base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["get", base + "/large"]) == 0
    assert capsysbinary.readouterr().out == LARGE


def test_include_shows_the_head_first(
    base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["get", "-i", base + "/chunked"]) == 0
    out = capsysbinary.readouterr().out
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"Hello, chunked World"


def test_verbose_shows_request_response_and_timings(
    base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["get", "-v", "-H", "X-Test: yes", base + "/"]) == 0
    out, err = capsysbinary.readouterr()
    assert out == b"Hello, World"
    assert b"> GET / HTTP/1.1\n" in err and b"> X-Test: yes\n" in err
    assert b"< HTTP/1.1 200 OK\n" in err
    assert b"* connect " in err and b" total " in err


def test_method_headers_and_data(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", "-X", "PUT", "-d", "payload", base + "/echo"]) == 0
    assert capsysbinary.readouterr().out == b"payload"
    assert main(["get", "-i", "-d", "posted", base + "/echo"]) == 0  # -d implies POST
    assert b"X-Framing: length" in capsysbinary.readouterr().out


def test_data_from_a_file_and_stdin(
    base: str,
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(b"\x00\x01file body")
    assert main(["get", "-d", f"@{path}", base + "/echo"]) == 0
    assert capsysbinary.readouterr().out == b"\x00\x01file body"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"from stdin")))
    assert main(["get", "-d", "@-", base + "/echo"]) == 0
    assert capsysbinary.readouterr().out == b"from stdin"


def test_fail_turns_4xx_into_exit_1(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", base + "/missing"]) == 0
    assert main(["get", "--fail", base + "/missing"]) == 1
    assert main(["get", "--fail", base + "/"]) == 0


def test_location_follows_redirects(base: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", base + "/redirect"]) == 0
    assert capsysbinary.readouterr().out == b""
    assert main(["get", "-L", "-v", base + "/redirect"]) == 0
    out, err = capsysbinary.readouterr()
    assert out == b"Hello, World" and err.count(b"> GET ") == 2


def test_connection_refused_exits_1(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", f"http://127.0.0.1:{free_port()}/"]) == 1
    assert b"ConnectError" in capsysbinary.readouterr().err


def test_a_body_cut_short_exits_1_after_the_partial_body(
    base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["get", base + "/truncated"]) == 1
    out, err = capsysbinary.readouterr()
    assert out == b"0123456789"  # streamed as it came, and the exit code says it is short
    assert b"ReadError" in err and b"990 bytes" in err


def test_a_silent_server_times_out(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    with raw_server(silent) as (host, port):
        assert main(["get", "--timeout", "0.3", f"http://{host}:{port}/"]) == 1
    assert b"ReadTimeout" in capsysbinary.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["ftp://x/"], ["-H", "no colon", "http://x/"], ["-d", "@/nonexistent/file", "http://x/"]],
)
def test_usage_errors_exit_2(argv: list[str], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", *argv]) == 2
    assert capsysbinary.readouterr().err.startswith(b"kakehashi get: ")


# --- against Flask on kakehashi's own server, with curl as the reference ----------------------


@pytest.fixture
def flask_base(start_server: Callable[..., Server]) -> str:
    return "http://" + start_server(flask_app.app).addresses[0]


def _curl(*argv: str) -> bytes:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    done = subprocess.run(["curl", "-sS", *argv], capture_output=True, timeout=20, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _get(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> bytes:
    assert main(["get", *argv]) == 0
    return capsysbinary.readouterr().out


def test_data_is_a_form_flask_can_read_as_curl_sends_it(
    flask_base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    argv = ["-d", "name=taro", "-d", "city=t%C5%8Dky%C5%8D", flask_base + "/form"]
    ours = json.loads(_get(capsysbinary, *argv))
    assert ours == {
        "form": {"name": ["taro"], "city": ["tōkyō"]},
        "content_type": "application/x-www-form-urlencoded",
    }
    assert ours == json.loads(_curl(*argv))


def test_an_explicit_content_type_wins_over_the_form_default(
    flask_base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    argv = ["-H", "Content-Type: text/plain", "-d", "name=taro", flask_base + "/form"]
    ours = json.loads(_get(capsysbinary, *argv))
    assert ours == {"form": {}, "content_type": "text/plain"}
    assert ours == json.loads(_curl(*argv))


def test_json_sets_content_type_and_accept(
    flask_base: str, capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    argv = ["--json", '{"name": "太郎", "n": [1, 2]}', flask_base + "/json"]
    ours = json.loads(_get(capsysbinary, *argv))
    assert ours == {"json": {"name": "太郎", "n": [1, 2]}, "accept": "application/json"}
    assert ours == json.loads(_curl(*argv))
    path = tmp_path / "body.json"
    path.write_text('{"from": "file"}')
    assert json.loads(_get(capsysbinary, "--json", f"@{path}", flask_base + "/json"))["json"] == {
        "from": "file"
    }


def test_user_sends_basic_credentials(
    flask_base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    argv = ["-u", "taro:pa:ss wörd", flask_base + "/whoami"]
    ours = json.loads(_get(capsysbinary, *argv))
    assert ours == {"type": "basic", "username": "taro", "password": "pa:ss wörd", "token": None}
    assert ours == json.loads(_curl(*argv))
    assert main(["get", "--fail", flask_base + "/whoami"]) == 1


def test_output_writes_the_body_to_a_file_and_nothing_to_stdout(
    flask_base: str, capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    ours, theirs = tmp_path / "ours.bin", tmp_path / "curl.bin"
    assert _get(capsysbinary, "-o", str(ours), flask_base + "/big") == b""
    _curl("-o", str(theirs), flask_base + "/big")
    assert ours.read_bytes() == theirs.read_bytes() == flask_app.BIG
    assert main(["get", "-o", str(tmp_path / "no" / "such" / "dir"), flask_base + "/big"]) == 1
    assert b"cannot write the output" in capsysbinary.readouterr().err


def test_only_one_kind_of_body(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["get", "-d", "a=1", "--json", "{}", "http://127.0.0.1:1/"]) == 2
    assert b"use only one of --data, --json" in capsysbinary.readouterr().err


def test_cacert_trusts_a_private_certificate(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    key, crt = self_signed_cert(tmp_path)
    with http_server(server_context(key, crt)) as url:
        assert main(["get", url + "/"]) == 1  # not in the system store
        assert b"CERTIFICATE_VERIFY_FAILED" in capsysbinary.readouterr().err
        assert _get(capsysbinary, "--cacert", str(crt), url + "/") == b"Hello, World"
        assert _curl("--cacert", str(crt), url + "/") == b"Hello, World"
    assert main(["get", "--cacert", str(tmp_path / "missing.pem"), url + "/"]) == 2
    assert main(["get", "--cacert", str(tmp_path / "key.pem"), url + "/"]) == 2


def test_form_parts_are_multipart_as_curl_sends_them(
    flask_base: str, capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(bytes(range(256)) * 100)
    argv = ["-F", "title=a photo", "-F", f"photo=@{photo}", "-F", f"raw=@{photo};type=x/y"]
    ours = json.loads(_get(capsysbinary, *argv, flask_base + "/upload"))
    theirs = json.loads(_curl(*argv, flask_base + "/upload"))
    assert ours["form"] == {"title": "a photo"}
    assert ours["files"]["photo"]["filename"] == "photo.png"
    assert ours["files"]["raw"]["content_type"] == "x/y"
    # curl sends no type for a .png it does not know; ours comes from mimetypes
    theirs["files"]["photo"]["content_type"] = ours["files"]["photo"]["content_type"]
    assert ours == theirs
    assert main(["get", "-F", "novalue", flask_base + "/upload"]) == 2


def test_compressed_asks_for_gzip_and_decodes_it(
    flask_base: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    url = flask_base + "/compressed/gzip"
    assert _get(capsysbinary, "--compressed", url) == flask_app.TEXT
    assert _get(capsysbinary, "--compressed", url) == _curl("--compressed", url)
    plain = _get(capsysbinary, "-i", url)  # like curl, no Accept-Encoding without the flag
    assert b"Content-Encoding" not in plain and plain.endswith(flask_app.TEXT)


def test_proxy_option_and_environment(
    flask_base: str, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = flask_base + "/args?via=proxy"
    with proxy_server() as (proxy, log):
        assert json.loads(_get(capsysbinary, "-x", proxy, url)) == {"via": ["proxy"]}
        monkeypatch.setenv("http_proxy", f"http://{proxy}")
        assert json.loads(_get(capsysbinary, url)) == {"via": ["proxy"]}
        assert _curl("-x", proxy, url) == _get(capsysbinary, "-x", proxy, url)
    assert log.lines == [f"GET {url} HTTP/1.1"] * 4
    assert main(["get", "-x", "socks5://p:1", url]) == 2


def _on_a_terminal(argv: list[str]) -> tuple[int, bytes]:
    """Run ``kakehashi get`` in-process with stderr on a pseudo-terminal; its exit code and
    what the terminal showed."""
    controller, terminal = os.openpty()
    with os.fdopen(terminal, "w", encoding="utf-8") as stderr:
        saved, sys.stderr = sys.stderr, stderr
        try:
            code = main(["get", *argv])
        finally:
            sys.stderr = saved
    shown = b""
    while select.select([controller], [], [], 0.5)[0]:
        try:
            data = os.read(controller, 65536)
        except OSError:  # EIO: the terminal side is closed and everything was read
            break
        if not data:
            break
        shown += data
    os.close(controller)
    return code, shown


def test_a_progress_bar_for_big_downloads_to_a_file_on_a_terminal(
    flask_base: str, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    out = tmp_path / "big.bin"
    code, shown = _on_a_terminal(["-o", str(out), flask_base + "/big"])
    assert code == 0 and out.read_bytes() == flask_app.BIG
    last = shown.rstrip(b"\r\n").rsplit(b"\r", 1)[-1]
    assert last.startswith(b"[" + b"#" * 30 + b"] 100.0%  3.0 MiB of 3.0 MiB  ")
    assert shown.endswith(b"\n")
    # not for a small download, not to stdout, not when stderr is not a terminal
    assert _on_a_terminal(["-o", str(tmp_path / "small"), flask_base + "/args"])[1] == b""
    assert _on_a_terminal([flask_base + "/big"])[1] == b""
    assert main(["get", "-o", str(out), flask_base + "/big"]) == 0
    assert capsysbinary.readouterr().err == b""


def test_a_progress_bar_without_a_known_length(flask_base: str, tmp_path: Path) -> None:
    out = tmp_path / "big.bin"
    code, shown = _on_a_terminal(["-o", str(out), flask_base + "/big-stream"])
    assert code == 0 and out.read_bytes() == flask_app.BIG
    last = shown.rstrip(b"\r\n").rsplit(b"\r", 1)[-1]
    assert last.startswith(b"3.0 MiB  ") and b"/s" in last and b"%" not in last


def test_https_through_a_proxy_tunnel_with_a_private_ca(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, crt = self_signed_cert(tmp_path)
    with http_server(server_context(key, crt)) as url, proxy_server() as (proxy, log):
        argv = ["-x", proxy, "--cacert", str(crt), url + "/chunked"]
        assert _get(capsysbinary, *argv) == _curl(*argv) == b"Hello, chunked World"
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        assert _get(capsysbinary, "--cacert", str(crt), url + "/") == b"Hello, World"
    assert log.lines == [f"CONNECT {url.removeprefix('https://')} HTTP/1.1"] * 3
