"""The ``tls`` extension of a TLS connection's scopes, from its ``ssl.SSLObject``.

Read once per connection, after the handshake (asyncio calls ``connection_made`` then).
The shape is kakehashi.asgi's :func:`~kakehashi.asgi.tls_extension`; this module only turns
what ``ssl`` reports into it.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

from kakehashi.asgi import tls_extension

__all__ = ["rfc4514_name", "tls_scope"]

_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
# OpenSSL's cipher names to their IANA numbers (the low 16 bits of OpenSSL's id): a constant
# table, read once from the library.
_CIPHER_IDS = {
    c["name"]: c["id"] & 0xFFFF for c in ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).get_ciphers()
}
# RFC 4514 §3: the attribute types with a short name.
_SHORT = {"commonName": "CN", "localityName": "L", "stateOrProvinceName": "ST",
          "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
          "streetAddress": "STREET", "domainComponent": "DC", "userId": "UID"}  # fmt: skip
_SPECIAL_RE = re.compile(r'([,+"\\<>;])')


def rfc4514_name(subject: Any) -> str:
    """``getpeercert()["subject"]`` as an RFC 4514 string (most specific first)."""
    rdns = []
    for rdn in reversed(subject):
        parts = []
        for key, value in rdn:
            text = _SPECIAL_RE.sub(r"\\\1", value)
            if text[:1] in (" ", "#"):
                text = "\\" + text
            parts.append(f"{_SHORT.get(key, key)}={text}")
        rdns.append("+".join(parts))
    return ",".join(rdns)


def tls_scope(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ``tls`` extension for a connection whose handshake is done."""
    cipher = ssl_object.cipher()
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    name = None
    if der:
        cert = ssl_object.getpeercert()
        name = rfc4514_name(cert.get("subject", ())) if cert else None
    return tls_extension(
        _VERSIONS.get(ssl_object.version() or "", 0),
        _CIPHER_IDS.get(cipher[0]) if cipher else None,
        client_cert_chain=chain,
        client_cert_name=name,
    )
