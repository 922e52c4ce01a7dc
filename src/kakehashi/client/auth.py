"""Credentials for the Authorization field: Basic (RFC 7617) and Bearer (RFC 6750).

What it does: turns ``auth=("user", "pw")``, a :class:`BasicAuth` or a :class:`BearerAuth`
into the value of one ``Authorization`` (or ``Proxy-Authorization``) field.

What it must not do: send anything; the Client adds the field, and drops it on a redirect to
another origin like any other credential.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Auth", "AuthInput", "BasicAuth", "BearerAuth", "bearer", "to_auth"]


class Auth(Protocol):
    """Anything that gives an Authorization field value."""

    def authorization(self) -> str:
        """The value of the ``Authorization`` field."""
        ...


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """``Authorization: Basic base64(user:password)``; both encoded as UTF-8 (RFC 7617 §2.1).

    Raises:
        ValueError: the user name holds a colon (the server could not split it back).
    """

    username: str
    password: str

    def __post_init__(self) -> None:
        if ":" in self.username:
            raise ValueError("a Basic auth user name cannot contain ':'")

    def authorization(self) -> str:
        """See :meth:`Auth.authorization`."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def __repr__(self) -> str:
        return f"BasicAuth({self.username!r}, '***')"


@dataclass(frozen=True, slots=True)
class BearerAuth:
    """``Authorization: Bearer TOKEN`` (RFC 6750 §2.1).

    Raises:
        ValueError: the token is empty or not the b64token syntax (no spaces, no CR/LF).
    """

    token: str

    def __post_init__(self) -> None:
        allowed = set("-._~+/=")
        if not self.token or not all(
            c.isascii() and (c.isalnum() or c in allowed) for c in self.token
        ):
            raise ValueError("a bearer token is letters, digits and -._~+/= only")

    def authorization(self) -> str:
        """See :meth:`Auth.authorization`."""
        return "Bearer " + self.token

    def __repr__(self) -> str:
        return "BearerAuth('***')"


def bearer(token: str) -> BearerAuth:
    """``auth=bearer(token)``: send ``Authorization: Bearer TOKEN``."""
    return BearerAuth(token)


AuthInput = Auth | tuple[str, str] | None


def to_auth(auth: AuthInput) -> Auth | None:
    """An :class:`Auth` from what a caller passes: a ``(user, password)`` pair or an Auth.

    Raises:
        TypeError: anything else.
    """
    if auth is None or hasattr(auth, "authorization"):
        return auth  # type: ignore[return-value]
    if isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(p, str) for p in auth):
        return BasicAuth(auth[0], auth[1])
    raise TypeError("auth must be a (user, password) pair of str, or BasicAuth/BearerAuth")
