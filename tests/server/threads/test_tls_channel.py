"""Distinguished names as mod_ssl's SSL_CLIENT_S_DN writes them (RFC 4514)."""

from __future__ import annotations

from kakehashi.server.threads.tls_channel import distinguished_name


def test_most_specific_first_with_short_names() -> None:
    subject = (
        (("countryName", "JP"),),
        (("organizationName", "Example"),),
        (("commonName", "client"),),
    )
    assert distinguished_name(subject) == "CN=client,O=Example,C=JP"


def test_special_characters_are_escaped() -> None:
    subject = ((("organizationName", "Smith, Jones & Co"),), (("commonName", ' #a+b;"<>\\ '),))
    assert distinguished_name(subject) == 'CN=\\ #a\\+b\\;\\"\\<\\>\\\\\\ ,O=Smith\\, Jones & Co'


def test_a_leading_hash_and_unknown_attributes() -> None:
    subject = ((("emailAddress", "a@example.org"),), (("commonName", "#x"),))
    assert distinguished_name(subject) == "CN=\\#x,emailAddress=a@example.org"


def test_multi_valued_rdn() -> None:
    subject = ((("commonName", "a"), ("userId", "7")),)
    assert distinguished_name(subject) == "CN=a+UID=7"
