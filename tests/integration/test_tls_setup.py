"""TLS settings: what is refused before anything is bound, what a bad file or key gives, an
encrypted key, the minimum version, and ``kakehashi serve --certfile`` end to end."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from kakehashi.errors import ConfigError
from kakehashi.server import Server, ServerConfig
from tests.conftest import ServeProcess, StartServer, addr, hello_app
from tests.integration.processes import cli
from tests.integration.tls_certs import KEY_PASSWORD, TLS_MARKS, Certs, module_certs
from tests.wire import Reader

pytestmark = TLS_MARKS
certs = pytest.fixture(scope="module")(module_certs)


def _get(where: str, context: ssl.SSLContext) -> bytes:
    host, _, port = where.rpartition(":")
    raw = socket.create_connection((host, int(port)), timeout=5)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return Reader(sock).read_response().body


def _client(certs: Certs) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"keyfile": "k.pem"}, "--keyfile needs --certfile"),
        ({"cert_reqs": "required"}, "--cert-reqs needs --certfile"),
        ({"certfile": "c.pem", "cert_reqs": "required"}, "needs --ca-certs"),
        ({"certfile": "c.pem", "cert_reqs": "always"}, "none, optional or required"),
        ({"certfile": "c.pem", "ssl_min_version": "TLSv1.1"}, "TLSv1.2 or TLSv1.3"),
        ({"certfile": "c.pem", "proxy_protocol": "v2"}, "terminate TLS at the proxy"),
    ],
)
def test_settings_that_disagree_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerConfig(**settings)


def test_a_missing_file_or_a_wrong_key_is_a_config_error(certs: Certs) -> None:
    bind = ("127.0.0.1:0",)
    with pytest.raises(ConfigError, match="TLS setup failed"):
        Server(hello_app, ServerConfig(bind=bind, certfile="/nonexistent/cert.pem"))
    with pytest.raises(ConfigError, match="TLS setup failed"):  # another certificate's key
        Server(
            hello_app,
            ServerConfig(bind=bind, certfile=str(certs.server_cert), keyfile=str(certs.client_key)),
        )
    with pytest.raises(ConfigError, match="TLS setup failed"):
        Server(
            hello_app,
            ServerConfig(bind=bind, certfile=str(certs.server_cert),
                         keyfile=str(certs.server_key), ciphers="NO-SUCH-CIPHER"),
        )  # fmt: skip


def test_an_encrypted_key_needs_its_password(start_server: StartServer, certs: Certs) -> None:
    settings = {"certfile": str(certs.server_cert), "keyfile": str(certs.server_key_encrypted)}
    with pytest.raises(ConfigError, match="--keyfile-password"):
        Server(hello_app, ServerConfig(bind=("127.0.0.1:0",), **settings))
    with pytest.raises(ConfigError, match="TLS setup failed"):
        Server(hello_app, ServerConfig(bind=("127.0.0.1:0",), keyfile_password="no", **settings))
    server = start_server(keyfile_password=KEY_PASSWORD, **settings)
    assert _get(addr(server), _client(certs)) == b"Hello, World"


def test_the_minimum_version_is_kept(start_server: StartServer, certs: Certs) -> None:
    server = start_server(
        certfile=str(certs.server_cert), keyfile=str(certs.server_key), ssl_min_version="TLSv1.3"
    )
    old = _client(certs)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        _get(addr(server), old)
    assert _get(addr(server), _client(certs)) == b"Hello, World"
    default = start_server(certfile=str(certs.server_cert), keyfile=str(certs.server_key))
    assert _get(addr(default), old) == b"Hello, World"  # TLS 1.2 by default


def test_kakehashi_serve_with_a_certificate(
    serve_process: Callable[..., ServeProcess], certs: Certs
) -> None:
    proc = serve_process(
        "tests.server_apps:app", "--bind", "127.0.0.1:0",
        "--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key),
    )  # fmt: skip
    assert proc.wait_for("on https://"), proc.stderr
    assert _get(proc.address(), _client(certs)) == b"Hello, World"


def test_pre_fork_workers_serve_tls(
    serve_process: Callable[..., ServeProcess], certs: Certs
) -> None:
    proc = serve_process(
        "tests.server_apps:app", "--bind", "127.0.0.1:0", "--workers", "2",
        "--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key),
    )  # fmt: skip
    assert proc.wait_for("on https://"), proc.stderr
    where = proc.address()
    assert all(_get(where, _client(certs)) == b"Hello, World" for _ in range(6))


def test_a_bad_certificate_stops_the_manager_before_any_worker() -> None:
    result = cli(
        "serve", "tests.server_apps:app", "--bind", "127.0.0.1:0", "--workers", "2",
        "--certfile", "/nonexistent/cert.pem",
    )  # fmt: skip
    assert result.returncode == 2
    assert "TLS setup failed: --certfile /nonexistent/cert.pem" in result.stderr
    assert "Traceback" not in result.stderr


def test_print_config_does_not_show_the_key_password() -> None:
    result = cli(
        "serve", "--certfile", "cert.pem", "--keyfile-password", "hunter2-words",
        "--print-config",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "hunter2-words" not in result.stdout
    assert "# keyfile-password is set (not shown)" in result.stdout
    assert 'certfile = "cert.pem"' in result.stdout
