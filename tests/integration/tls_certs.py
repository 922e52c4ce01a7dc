"""Test certificates, made with Debian's ``openssl`` at test time (never committed).

A test CA signs a server certificate (``localhost`` and ``127.0.0.1``) and a client
certificate (``CN=client,O=Kakehashi Tests``); a second CA, which the server does not trust,
signs another client certificate.  Keys are EC P-256: quick to make and to use.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["TLS_MARKS", "Certs", "have_openssl", "make_certs", "module_certs"]

KEY_PASSWORD = "correct horse"


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA's certificate: clients verify the server with it
    server_cert: Path
    server_key: Path
    server_key_encrypted: Path  # the same key, encrypted with KEY_PASSWORD
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # a client certificate from a CA the server does not trust
    stranger_key: Path


def have_openssl() -> bool:
    return shutil.which("openssl") is not None


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def _new_key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
    )


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _new_key(key)
    _openssl(
        "req", "-x509", "-key", str(key), "-out", str(cert), "-days", "2",
        "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _signed(
    directory: Path, name: str, subject: str, ca: tuple[Path, Path], extensions: str
) -> tuple[Path, Path]:
    key, csr, cert = (directory / f"{name}{ext}" for ext in (".key", ".csr", ".pem"))
    ext_file = directory / f"{name}.ext"
    ext_file.write_text(extensions)
    _new_key(key)
    _openssl("req", "-new", "-key", str(key), "-out", str(csr), "-subj", subject)
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext_file),
    )  # fmt: skip
    return cert, key


def make_certs(directory: Path) -> Certs:
    """Make the CAs, certificates and keys in ``directory``."""
    ca = _ca(directory, "test-ca")
    server = _signed(
        directory, "server", "/CN=localhost", ca,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )  # fmt: skip
    client = _signed(
        directory, "client", "/O=Kakehashi Tests/CN=client", ca, "extendedKeyUsage=clientAuth\n"
    )
    stranger_ca = _ca(directory, "stranger-ca")
    stranger = _signed(
        directory, "stranger", "/CN=stranger", stranger_ca, "extendedKeyUsage=clientAuth\n"
    )
    encrypted = directory / "server-encrypted.key"
    _openssl(
        "pkey", "-in", str(server[1]), "-aes256", "-passout", f"pass:{KEY_PASSWORD}",
        "-out", str(encrypted),
    )  # fmt: skip
    return Certs(ca[0], *server, encrypted, *client, *stranger)


def module_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """The body of a module-scoped ``certs`` fixture (test modules declare their own)."""
    return make_certs(tmp_path_factory.mktemp("certs"))


TLS_MARKS = [
    pytest.mark.integration,
    pytest.mark.timeout(60),
    pytest.mark.skipif(not have_openssl(), reason="needs openssl to make test certificates"),
]
