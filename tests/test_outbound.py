"""Requests to addresses people type in go only to the outside world (config/outbound.py): refused when
saved, and refused again when they connect (a name may resolve elsewhere by then), before anything is
sent. The tests' own receivers are on loopback, which the test settings allow; each test here allows
nothing unless it says so."""

import pytest
import requests

from config import outbound
from tests.journeys import receiver as rx


@pytest.fixture(autouse=True)
def nothing_allowed(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ""


@pytest.fixture
def receiver():
    """A real HTTP server on loopback that records the requests reaching it (the journeys' receiver)."""
    got, url, server = rx.start("secret")
    yield url, got.received
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",  # a name: its resolved address is checked
        "http://10.1.2.3/hook",
        "http://172.16.0.9/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",  # IPv4 written as IPv6
        "http://224.0.0.1/hook",
    ],
)
def test_an_address_on_this_machine_or_a_private_network_is_refused(url):
    error = outbound.url_error(url)
    assert "requests go only to addresses on the internet" in error


@pytest.mark.parametrize(
    "url", ["https://93.184.215.14/hook", "https://[2606:4700::1111]/x", "https://no-such-host.invalid/x"]
)
def test_an_internet_address_or_a_name_that_does_not_resolve_yet_is_accepted(url):
    assert outbound.url_error(url) == ""


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost", "gopher://x"])
def test_only_http_and_https_addresses_are_taken(url):
    assert outbound.url_error(url) == "Use an http:// or https:// address."


def test_the_allowed_networks_let_a_private_receiver_in(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = "10.20.0.0/16, 127.0.0.0/8"
    assert outbound.url_error("http://10.20.3.4/hook") == ""
    assert outbound.url_error("http://127.0.0.1:9/hook") == ""
    assert outbound.url_error("http://10.21.0.1/hook") != ""


def test_a_connection_that_reaches_a_refused_address_sends_nothing(receiver):
    # the name was fine when saved; at connect time its peer is loopback (DNS rebinding looks the same)
    url, received = receiver
    with pytest.raises(outbound.OutboundRefused, match="127.0.0.1"):
        outbound.session().post(url, json={"deliveries": []}, timeout=5)
    assert received == []
    # it is a ConnectionError: callers count it as a failed attempt
    assert issubclass(outbound.OutboundRefused, requests.ConnectionError)


def test_a_connection_to_an_allowed_network_goes_through(receiver, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = "127.0.0.0/8"
    url, received = receiver
    outbound.session().post(url, json={"deliveries": []}, timeout=5)
    assert [item.body for item in received] == [{"deliveries": []}]
