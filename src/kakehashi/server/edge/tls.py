"""TLS with the standard library's ``ssl``: the server's context and its sockets.

The rest of the server is written for non-blocking plain sockets: it catches
``BlockingIOError`` when the kernel has nothing to give or no room, gathers pieces with
``sendmsg`` and sends files with ``os.sendfile``.  A non-blocking ``ssl.SSLSocket`` raises
``SSLWantReadError``/``SSLWantWriteError`` instead and supports neither of the other two, so
the context makes :class:`TLSSocket`, which keeps those promises:

- a read or write that must wait raises ``BlockingIOError``;
- ``sendmsg`` joins the first pieces and sends them as one write;
- a write is given at most ``TLS_SEND_BYTES``.  OpenSSL, when a write cannot finish, has
  already encrypted part of it and requires the next write to start with the same bytes and
  be no shorter (``SSL_R_BAD_LENGTH`` otherwise).  The callers already retry from the first
  unsent byte (what was refused is queued, and later writes only add behind it), so one
  constant bound on every write is all it takes for the retry to be at least as long.
- files are read and sent (sockio.send_file), since the kernel cannot encrypt them.

Decrypted bytes OpenSSL holds (``pending()``) are not seen by epoll: a read drains them,
and a channel parking with some left is armed to run at once (tls_channel.py).

Owned like any socket: by the thread that owns its channel.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from kakehashi.errors import ConfigError
from kakehashi.server.net.sockio import TLS_SEND_BYTES

__all__ = ["TLSSettings", "TLSSocket", "make_context"]

_WAIT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)
_VERIFY = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}
_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def _would_block() -> BlockingIOError:
    return BlockingIOError(errno.EAGAIN, "TLS record incomplete")


class TLSSocket(ssl.SSLSocket):
    """An SSLSocket that behaves as the server's plain sockets do (see the module)."""

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        if flags:  # MSG_PEEK from the sweeper: is anything waiting?
            if self.pending():
                return b"\0"
            return socket.socket.recv(self, buflen, flags)  # the raw bytes: records
        try:
            data = self.read(buflen)
        except _WAIT:
            raise _would_block() from None
        if not data or len(data) >= buflen or not self.pending():
            return data
        parts = [data]  # the rest of a record already decrypted: epoll cannot see it
        size = len(data)
        while size < buflen and self.pending():
            try:
                more = self.read(buflen - size)
            except _WAIT:
                break
            parts.append(more)
            size += len(more)
        return b"".join(parts)

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        try:
            return super().recv_into(buffer, nbytes, flags)
        except _WAIT:
            raise _would_block() from None

    def send(self, data: Any, flags: int = 0) -> int:
        if len(data) > TLS_SEND_BYTES:
            data = memoryview(data)[:TLS_SEND_BYTES]
        try:
            return super().send(data, flags)
        except _WAIT:
            raise _would_block() from None

    def sendmsg(self, buffers: Iterable[Any], *args: Any) -> int:  # type: ignore[override]
        """The first pieces, joined up to the write bound, in one write."""
        pieces: list[Any] = []
        size = 0
        for piece in buffers:
            if size + len(piece) > TLS_SEND_BYTES:
                pieces.append(memoryview(piece)[: TLS_SEND_BYTES - size])
                break
            pieces.append(piece)
            size += len(piece)
        return self.send(pieces[0] if len(pieces) == 1 else b"".join(pieces))

    def shutdown(self, how: int) -> None:
        """Shut the connection down but keep the TLS state (SSLSocket drops it, after which
        a write would go out unencrypted): a thread still using the socket gets an error."""
        socket.socket.shutdown(self, how)

    def close_notify(self) -> None:
        """Say goodbye (TLS close_notify) without waiting for the peer's, before close()."""
        try:
            self.unwrap()
        except (OSError, ValueError):  # the peer's goodbye is not awaited; or it is gone
            pass


def _no_password() -> str:
    raise ConfigError("the --keyfile is encrypted: give --keyfile-password")


def _load(what: str, step: Callable[[], object]) -> None:
    try:
        step()
    except ConfigError:
        raise
    except OSError as exc:  # ssl.SSLError is one
        reason = exc.strerror or (exc.args[-1] if exc.args else exc)
        raise ConfigError(f"TLS setup failed: {what}: {reason}") from exc


class TLSSettings(Protocol):
    """The settings read here (ServerConfig has them): a protocol, so that this room stays
    below the config room, which imports the trusted-proxy parser from it."""

    @property
    def certfile(self) -> str: ...
    @property
    def keyfile(self) -> str: ...
    @property
    def keyfile_password(self) -> str: ...
    @property
    def ca_certs(self) -> str: ...
    @property
    def ciphers(self) -> str: ...
    @property
    def cert_reqs(self) -> str: ...
    @property
    def ssl_min_version(self) -> str: ...


def make_context(config: TLSSettings) -> ssl.SSLContext:
    """The server's SSLContext from its settings; its sockets are TLSSockets.

    Raises:
        ConfigError: a file cannot be read, the key does not match or needs a password, or
            the cipher list selects nothing.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[config.ssl_min_version]
    # No renegotiation (a client could make the server do handshakes at will), and a peer
    # closing without close_notify is a plain end of the connection.
    context.options |= ssl.OP_NO_RENEGOTIATION | getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    password: Any = config.keyfile_password or _no_password
    key = f" and --keyfile {config.keyfile}" if config.keyfile else ""
    _load(
        f"--certfile {config.certfile}{key}",
        lambda: context.load_cert_chain(config.certfile, config.keyfile or None, password),
    )
    if config.ca_certs:
        _load(
            f"--ca-certs {config.ca_certs}", lambda: context.load_verify_locations(config.ca_certs)
        )
    if config.ciphers:
        _load(f"--ciphers {config.ciphers!r}", lambda: context.set_ciphers(config.ciphers))
    context.verify_mode = _VERIFY[config.cert_reqs]
    context.set_alpn_protocols(["http/1.1"])
    context.sslsocket_class = TLSSocket
    return context
