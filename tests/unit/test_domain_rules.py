"""Pure rules: domain entries, origin matching, client IP behind trusted proxies, scopes."""

from __future__ import annotations

import ipaddress

import pytest

from reservekit.auth.client_ip import client_ip
from reservekit.domain.domains import host_matches, normalise_domain, origin_host
from reservekit.domain.errors import InvalidInput, NotPermitted
from reservekit.domain.scopes import check_grantable, resolve_scopes


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Example.COM.", "example.com"),
        ("*.Example.com", "*.example.com"),
        ("localhost", "localhost"),
        ("a-b.io", "a-b.io"),
    ],
)
def test_domains_are_normalised(raw: str, normal: str) -> None:
    assert normalise_domain(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "*",
        "*.com",
        "a.*.com",
        "-a.com",
        "a-.com",
        "http://a.com",
        "a.com/x",
        "a.com:80",
        "a..com",
        "é.com",
    ],
)
def test_bad_domains_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_domain(raw)


def test_origin_then_referer_and_null() -> None:
    assert origin_host("https://A.example.com.", "https://b.example.com") == "a.example.com"
    assert origin_host(None, "https://b.example.com/x") == "b.example.com"
    assert origin_host("null", "https://b.example.com/x") is None
    assert origin_host(None, None) is None


def test_wildcards_cover_subdomains_not_the_apex() -> None:
    assert host_matches("a.example.com", ["*.example.com"])
    assert host_matches("a.b.example.com", ["*.example.com"])
    assert not host_matches("example.com", ["*.example.com"])
    assert not host_matches("badexample.com", ["*.example.com"])
    assert not host_matches(None, ["example.com"])


TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


def test_client_ip_believes_forwarded_for_only_from_trusted_proxies() -> None:
    assert client_ip("203.0.113.5", "198.51.100.1", TRUSTED) == "203.0.113.5"
    assert client_ip("10.0.0.2", "198.51.100.1", TRUSTED) == "198.51.100.1"
    # The client may prepend anything; we take the rightmost address our proxies did not add.
    assert client_ip("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.7", TRUSTED) == "198.51.100.1"
    assert client_ip("10.0.0.2", "garbage", TRUSTED) == "10.0.0.2"
    assert client_ip("10.0.0.2", None, ()) == "10.0.0.2"


def test_scopes_default_and_validation() -> None:
    assert "platform:admin" not in resolve_scopes(None, operator=True)
    assert resolve_scopes(["keys:read", "keys:read"], operator=False) == ("keys:read",)
    assert resolve_scopes(["platform:admin"], operator=True) == ("platform:admin",)
    with pytest.raises(InvalidInput):
        resolve_scopes(["platform:admin"], operator=False)
    with pytest.raises(NotPermitted):
        check_grantable(["audit:read"], frozenset({"keys:write"}))
