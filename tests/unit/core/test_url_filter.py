"""The SSRF rules for URLs the service fetches itself."""

from __future__ import annotations

import pytest

from vmimage.core.url_filter import FilteredUrl, UrlPolicy


def check(policy: UrlPolicy, url: str, addresses: list[str]) -> None:
    policy.check_addresses(url, policy.target(url), addresses)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "172.16.1.1", "192.168.1.1", "169.254.169.254",
                                     "::1", "fe80::1", "fd00::1", "0.0.0.0", "100.64.0.1", "::ffff:127.0.0.1",
                                     "224.0.0.1"])
def test_internal_addresses_are_refused(address):
    with pytest.raises(FilteredUrl, match="does not pass filtering"):
        check(UrlPolicy(), "http://example.com/disk.img", [address])


def test_one_internal_address_among_public_ones_is_enough_to_refuse():
    with pytest.raises(FilteredUrl):
        check(UrlPolicy(), "http://example.com/x", ["93.184.216.34", "10.0.0.1"])


def test_public_addresses_on_default_ports_pass():
    check(UrlPolicy(), "http://example.com/x", ["93.184.216.34"])
    check(UrlPolicy(), "https://example.com:443/x", ["2606:2800:220:1::1"])


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://info.cern.ch",
                                 "http:///nohost", "http://example.com:22/x", "http://[bad/x"])
def test_schemes_ports_and_malformed_urls_are_refused(url):
    with pytest.raises(FilteredUrl):
        check(UrlPolicy(), url, ["93.184.216.34"])


def test_unresolvable_hosts_are_refused():
    with pytest.raises(FilteredUrl, match="does not resolve"):
        check(UrlPolicy(), "http://nowhere.invalid/x", [])


def test_allow_list_by_address_network_and_name_opens_any_port():
    check(UrlPolicy(["127.0.0.1"]), "http://127.0.0.1:8080/x", ["127.0.0.1"])
    check(UrlPolicy(["10.0.0.0/8"]), "http://mirror.lan:8000/x", ["10.2.3.4"])
    check(UrlPolicy(["mirror.lan"]), "http://mirror.lan:8000/x", ["192.168.7.7"])
    with pytest.raises(FilteredUrl):   # the allow list names one network, not every private one
        check(UrlPolicy(["10.0.0.0/8"]), "http://other.lan/x", ["192.168.7.7"])


@pytest.mark.parametrize("address", [
    "2002:7f00:1::1",                # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",             # 6to4 of 169.254.169.254
    "2002:c0a8:0101::",              # 6to4 of 192.168.1.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",   # Teredo, client 127.0.0.1 (bits inverted)
    "2001:0:4136:e378:8000:63bf:f5ff:fffa",   # Teredo, client 10.0.0.5
    "64:ff9b::7f00:1",               # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",            # NAT64 of 169.254.169.254
    "64:ff9b:1::a00:5",              # local-use NAT64 of 10.0.0.5
    "fec0::1", "fed0::1", "feff::1",  # deprecated site-local
])
def test_ipv6_addresses_leading_to_internal_ipv4_or_site_local_are_refused(address):
    with pytest.raises(FilteredUrl, match="is not public"):
        check(UrlPolicy(), "http://example.com/disk.img", [address])


@pytest.mark.parametrize("address", ["2002:5db8:d822::1",                      # 6to4 of 93.184.216.34
                                     "2001:0:4136:e378:8000:63bf:a247:27dd",  # Teredo of 93.184.216.34
                                     "64:ff9b::5db8:d822"])                   # NAT64 of 93.184.216.34
def test_ipv6_addresses_leading_to_public_ipv4_are_judged_by_it(address):
    from vmimage.core.url_filter import embedded_ipv4
    import ipaddress
    assert str(embedded_ipv4(ipaddress.IPv6Address(address))) == "93.184.216.34"
    check(UrlPolicy(), "http://example.com/disk.img", [address])
