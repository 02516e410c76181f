"""Requests to addresses people type in (journey webhook destinations, team chat robots) go only to the
outside world: not to this machine, the private network, link-local addresses (a cloud's metadata
service) or any other address that is not globally routable — unless `OUTBOUND_ALLOWED_NETWORKS` names
it (a receiver on the office network, the tests' loopback receivers).

Checked twice: when the address is saved (`url_error`: an IP address, or a name that resolves, to a
refused address), and when the request connects (`session()`: the peer the socket reached is checked
before anything is sent, so a name that resolves elsewhere by then, DNS rebinding, is refused too).
Redirects are not followed by the callers. Addresses that operators configure in settings (S3, the
OpenID provider, the alerts webhook) are not people's input and are not checked."""

import ipaddress
import socket
import urllib.parse
from functools import lru_cache
from typing import Any

import requests
from django.conf import settings
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefused(requests.ConnectionError):
    """A request whose peer is not an address this portal may reach (a ConnectionError: callers count
    it as a failed attempt, like an unreachable host)."""


@lru_cache(maxsize=8)
def _allowed(networks: str) -> tuple[Any, ...]:
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in networks.split(",") if part.strip()
    )


def allowed_networks() -> tuple[Any, ...]:
    value = getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", "")
    return _allowed(value if isinstance(value, str) else ",".join(value))


def address_allowed(address: str) -> bool:
    """Whether a request may go to this IP address: a globally routable one, or one in
    OUTBOUND_ALLOWED_NETWORKS."""
    ip: Address = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in network for network in allowed_networks()):
        return True
    return ip.is_global and not ip.is_multicast


def url_error(url: str) -> str:
    """Why a request may not go to `url` (empty when it may): only http(s), and a host that is not, and
    does not resolve to, a refused address. A name that does not resolve now is accepted: its requests
    fail as an unreachable host would, and are checked again when they connect."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _("Use an http:// or https:// address.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return _("The port is not a number from 0 to 65535.")
    try:
        found = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError):
        return ""
    refused = sorted(address for address in found if not address_allowed(address))
    if refused:
        return _(
            "%(host)s is an address on this machine or a private network (%(addresses)s): requests go "
            "only to addresses on the internet."
        ) % {"host": parts.hostname, "addresses": ", ".join(refused)}
    return ""


def _check_peer(connection: Any) -> None:
    peer = connection.sock.getpeername()[0] if connection.sock is not None else None
    if peer is not None and not address_allowed(peer):
        connection.close()
        raise OutboundRefused(
            f"not sent: {connection.host} reached {peer}, an address on this machine or a private network"
        )


class _CheckedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self)


class _CheckedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self)


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


def _refusal(error: BaseException, depth: int = 0) -> OutboundRefused | None:
    """The OutboundRefused inside the errors urllib3 and requests wrap a connection's failure in."""
    if isinstance(error, OutboundRefused):
        return error
    if depth > 5:
        return None
    inner = [*error.args, getattr(error, "reason", None), error.__cause__, error.__context__]
    for candidate in inner:
        if isinstance(candidate, BaseException):
            found = _refusal(candidate, depth + 1)
            if found is not None:
                return found
    return None


class _CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().send(request, *args, **kwargs)
        except requests.ConnectionError as exc:
            refused = _refusal(exc)
            if refused is None or refused is exc:
                raise
            raise refused from exc


def session() -> requests.Session:
    """A requests session whose connections are refused (OutboundRefused) when their peer is not an
    allowed address. No proxy from the environment: the peer checked is the destination itself."""
    checked = requests.Session()
    checked.trust_env = False
    adapter = _CheckedAdapter()
    checked.mount("http://", adapter)
    checked.mount("https://", adapter)
    return checked
