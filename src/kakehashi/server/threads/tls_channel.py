"""TLSChannel: an HTTPChannel whose connection speaks TLS (docs/tls.md).

The handshake runs on the parked connection, in a phase of its own (Phase.HANDSHAKE): a
worker that gets the socket's readiness takes one non-blocking step of it and parks the
channel again, armed for what OpenSSL asks (to read, or to write), so a client that connects
and never says hello holds no thread; the sweeper closes it at the header timeout, which
runs from accept.  Once the handshake is done the channel is an HTTPChannel like any other,
on a TLSSocket (tls.py) that keeps the plain socket's promises.

Plain connections never meet this class: the poller is given it as its channel factory once,
when the server starts with ``--certfile``, so the plain request path tests nothing for TLS.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from typing import TYPE_CHECKING, Any

from kakehashi.http1 import Request
from kakehashi.server.edge.tls import TLSSocket
from kakehashi.server.observe.loggers import error_logger
from kakehashi.server.threads.channel import HTTPChannel
from kakehashi.server.threads.context import ServerContext
from kakehashi.server.threads.environ import ProxiedEnvironBuilder
from kakehashi.server.threads.poller import WAIT_READ, WAIT_WRITE, Phase
from kakehashi.server.threads.task import error_response
from kakehashi.wsgi import InputStream

# Enum members read through module names: slow on Python 3.11 (docs/design.md).
_HANDSHAKE = Phase.HANDSHAKE
_IDLE = Phase.IDLE
_WRITE = Phase.WRITE

if TYPE_CHECKING:
    from kakehashi.server.threads.poller import ChannelFactory, Poller

__all__ = ["TLSChannel", "TLSEnvironBuilder", "TLSPeer", "distinguished_name", "tls_channels"]

# RFC 4514 short names of the attributes certificates carry; others keep ssl's long name.
_SHORT_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "domainComponent": "DC",
    "streetAddress": "STREET",
    "userId": "UID",
}
_DRAIN_BYTES = 64 * 1024
# OpenSSL's reasons for a request line where a ClientHello should be (it recognises GET,
# POST, HEAD, PUT and CONNECT; other bytes fail as "wrong version number" and are closed).
_PLAIN_HTTP = frozenset({"HTTP_REQUEST", "HTTPS_PROXY_REQUEST"})


def _escape(value: str) -> str:
    """An attribute value escaped as RFC 4514 §2.4 says."""
    out = "".join("\\" + ch if ch in '"+,;<>\\' else ch for ch in value)
    if value.endswith(" ") and len(value) > 1:
        out = out[:-1] + "\\ "
    if value[:1] in ("#", " "):
        out = "\\" + out
    return out


def distinguished_name(rdns: Any) -> str:
    """A subject or issuer from ``getpeercert()`` as an RFC 4514 string, the way Apache's
    mod_ssl writes ``SSL_CLIENT_S_DN``: most specific first, ``CN=client,O=Example,C=JP``."""
    parts = []
    for rdn in reversed(rdns):
        parts.append(
            "+".join(f"{_SHORT_NAMES.get(key, key)}={_escape(value)}" for key, value in rdn)
        )
    return ",".join(parts)


class TLSPeer(tuple[str, int]):
    """A peer address that also carries what the handshake established, as the environ
    keys Apache's mod_ssl gives (``tls``)."""

    tls: dict[str, str]


def _tls_facts(sock: TLSSocket) -> dict[str, str]:
    cipher = sock.cipher()
    facts = {
        "HTTPS": "on",
        "SSL_PROTOCOL": sock.version() or "",
        "SSL_CIPHER": cipher[0] if cipher else "",
        "SSL_CLIENT_VERIFY": "NONE",
    }
    cert = sock.getpeercert()
    if cert:  # only a certificate that was verified is returned
        facts["SSL_CLIENT_VERIFY"] = "SUCCESS"
        facts["SSL_CLIENT_S_DN"] = distinguished_name(cert.get("subject", ()))
        facts["SSL_CLIENT_I_DN"] = distinguished_name(cert.get("issuer", ()))
    return facts


class TLSEnvironBuilder(ProxiedEnvironBuilder):
    """Adds a connection's TLS facts (from its TLSPeer) to every environ it builds."""

    __slots__ = ()

    def build(self, request: Request, body: InputStream, peer: tuple[str, int]) -> dict[str, Any]:
        environ = super().build(request, body, peer)
        facts = getattr(peer, "tls", None)
        if facts:
            environ.update(facts)
        return environ


class TLSChannel(HTTPChannel):
    """A connection over TLS; see the module.  ``tls`` is ``sock``, typed as what it is."""

    __slots__ = ("_wait", "tls")

    def __init__(
        self, sock: TLSSocket, peer: tuple[str, int], ctx: ServerContext, poller: Poller
    ) -> None:
        super().__init__(sock, peer, ctx, poller)
        self.tls = sock
        self.phase = _HANDSHAKE
        self._wait = WAIT_READ  # what the handshake waits for

    def run(self) -> None:
        if self.phase is not _HANDSHAKE:
            super().run()
            return
        try:
            done = self._handshake()
        except BaseException:  # a bug of ours: log it, drop this connection, keep serving
            error_logger.exception("internal error in a TLS handshake from %s", self.peer[0])
            done = None
        if done is None:
            self.close()
        elif done:
            super().run()  # the first request usually came with the handshake's end
        else:
            self.park()

    def _handshake(self) -> bool | None:
        """One step of the handshake: True once done, False to wait, None if it failed."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._wait = WAIT_READ
            return False
        except ssl.SSLWantWriteError:
            self._wait = WAIT_WRITE
            return False
        except ssl.SSLError as exc:
            self._refuse_handshake(exc)
            return None
        except OSError as exc:
            error_logger.debug("TLS handshake from %s broke: %s", self.peer[0], exc)
            return None
        self.phase = _IDLE
        peer = TLSPeer(self.peer)
        peer.tls = _tls_facts(self.tls)
        self.peer = peer
        return True

    def _refuse_handshake(self, exc: ssl.SSLError) -> None:
        """A failed handshake closes the connection; plain HTTP gets a 400 first."""
        if exc.reason not in _PLAIN_HTTP:
            error_logger.debug("TLS handshake from %s failed: %s", self.peer[0], exc)
            return
        error_logger.info("plain HTTP from %s on a TLS port: 400, closed", self.peer[0])
        page = error_response(self.ctx, 400, "this port speaks HTTPS: use https://")
        raw = self.tls
        sent = 0
        with contextlib.suppress(OSError):
            if socket.socket.send(raw, page) == len(page):  # unencrypted, on purpose
                sent = len(page) - page.index(b"\r\n\r\n") - 4
            socket.socket.shutdown(raw, socket.SHUT_WR)
            # What the client sent and OpenSSL did not read would make the close a reset,
            # which can destroy the 400 before the client reads it.
            while socket.socket.recv(raw, _DRAIN_BYTES):
                pass
        if self.ctx.metrics is not None:
            self.ctx.metrics.refused(400)
        self.ctx.access.refused(self.peer[0], 400, sent)

    def park(self) -> None:
        if self.phase is _HANDSHAKE:
            wait = self._wait
        elif self.phase is not _WRITE and self.tls.pending():
            # Decrypted bytes wait inside OpenSSL, where epoll cannot see them: arm for
            # writing too, which fires at once, and the next owner reads them.
            wait = WAIT_READ | WAIT_WRITE
        else:
            super().park()
            return
        if self.ctx.stopping:
            self.linger(self.ctx.linger_until)
        with self.lock:
            self.owned = False
            self.poller.arm_tls(self, wait)

    def linger(self, until: float) -> None:
        """On shutdown a handshake under way is no request yet: closed with the idle ones."""
        if self.phase is _HANDSHAKE:
            self.deadline = min(self.deadline, until)
        else:
            super().linger(until)

    def expire(self) -> None:
        if self.phase is not _HANDSHAKE:
            super().expire()
            return
        if self.ctx.metrics is not None:
            self.ctx.metrics.timed_out(self.phase.value, 0)
        error_logger.debug(
            "TLS handshake timeout (%gs) for %s: closed", self.ctx.config.header_timeout,
            self.peer[0],
        )  # fmt: skip
        self.close()

    def close(self) -> None:
        if self.phase is not _HANDSHAKE and not self.closed:
            self.tls.close_notify()
        super().close()


def tls_channels(context: ssl.SSLContext) -> ChannelFactory:
    """The poller's channel factory for a TLS server: wraps each accepted socket."""

    def open_channel(
        sock: socket.socket, peer: tuple[str, int], ctx: ServerContext, poller: Poller
    ) -> HTTPChannel:
        wrapped = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        assert isinstance(wrapped, TLSSocket)
        return TLSChannel(wrapped, peer, ctx, poller)

    return open_channel
