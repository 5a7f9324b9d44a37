"""Client addresses: forwarded headers are believed only from a trusted proxy."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sanic.compat import Header

from walletbot.desk.addresses import TrustedProxies, client_address, normalize

NGINX = TrustedProxies()  # 127.0.0.1 and ::1


def request(peer, *headers):
    return SimpleNamespace(ip=peer, headers=Header(list(headers)))


@pytest.mark.parametrize("peer", ["203.0.113.9", "127.0.0.2", "10.0.0.5", "::2"])
def test_a_peer_that_is_not_the_proxy_is_the_client_whatever_it_sends(peer):
    forged = request(peer, ("X-Forwarded-For", "1.2.3.4"), ("X-Real-IP", "5.6.7.8"))
    assert client_address(forged, NGINX) == normalize(peer)


def test_behind_nginx_the_rightmost_untrusted_forwarded_address_is_the_client():
    # The client sent "1.2.3.4" itself; nginx appended the address it saw.
    via_nginx = request("127.0.0.1", ("X-Forwarded-For", "1.2.3.4, 198.51.100.7"),
                        ("X-Real-IP", "198.51.100.7"))
    assert client_address(via_nginx, NGINX) == "198.51.100.7"
    two_headers = request("127.0.0.1", ("X-Forwarded-For", "1.2.3.4"),
                          ("X-Forwarded-For", "198.51.100.8"))
    assert client_address(two_headers, NGINX) == "198.51.100.8"
    chain = request("::1", ("X-Forwarded-For", "198.51.100.9, 127.0.0.1"))
    assert client_address(chain, NGINX) == "198.51.100.9"


def test_behind_nginx_without_a_usable_forwarded_for():
    assert client_address(request("127.0.0.1", ("X-Real-IP", "198.51.100.3")), NGINX) == "198.51.100.3"
    garbage = request("127.0.0.1", ("X-Forwarded-For", "1.2.3.4, not-an-ip"),
                      ("X-Real-IP", "198.51.100.4"))
    assert client_address(garbage, NGINX) == "198.51.100.4"
    assert client_address(request("127.0.0.1", ("X-Real-IP", "junk")), NGINX) == "127.0.0.1"
    assert client_address(request("127.0.0.1"), NGINX) == "127.0.0.1"


def test_addresses_are_normalized():
    assert normalize("::ffff:198.51.100.1") == "198.51.100.1"
    assert normalize("198.51.100.1:4321") == "198.51.100.1"
    assert normalize("[2001:db8::1]:443") == "2001:db8::1"
    assert normalize("2001:DB8:0::1") == "2001:db8::1"
    for junk in ("", "x", "1.2.3", None, 5, "1.2.3.4.5"):
        assert normalize(junk) is None
    assert client_address(request("::ffff:127.0.0.1", ("X-Real-IP", "198.51.100.5")),
                          NGINX) == "198.51.100.5"
    assert client_address(request(""), NGINX) == "unknown"


def test_trusted_proxies_take_networks_and_strings():
    docker = TrustedProxies.parse("172.16.0.0/12, 127.0.0.1")
    assert "172.18.0.4" in docker and "127.0.0.1" in docker and "10.0.0.1" not in docker
    assert "::1" not in docker and "garbage" not in docker
    assert client_address(request("172.18.0.4", ("X-Forwarded-For", "198.51.100.6")),
                          docker) == "198.51.100.6"
    assert "127.0.0.1" in TrustedProxies.parse(None) and "::1" in TrustedProxies.parse("")
    assert "10.1.2.3" in TrustedProxies.parse(["10.0.0.0/8"])
    with pytest.raises(ValueError, match="trusted proxy"):
        TrustedProxies.parse("localhost")
    with pytest.raises(ValueError):
        TrustedProxies.parse(5)


def test_the_desk_believes_the_same_proxies_as_the_web_chat(monkeypatch):
    """Behind Compose's nginx or an Ingress the per-address login lock must see clients."""
    from rasa.shared.utils.io import read_config_file

    from walletbot.desk.api import DeskInput
    from walletbot.settings import PROJECT_ROOT

    monkeypatch.setenv("WEB_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1")
    credentials = read_config_file(str(PROJECT_ROOT / "credentials.yml"))
    desk = DeskInput.from_credentials(credentials["walletbot.desk.api.DeskInput"])
    assert "10.1.2.3" in desk.trusted_proxies and "192.168.1.1" not in desk.trusted_proxies
