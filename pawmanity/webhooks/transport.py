"""Posting to a URL an admin typed, without letting it reach what it should not (SSRF).

- only http and https, no user:password in the URL;
- the host is resolved once, every address is checked, and the connection goes to the checked address (a DNS
  answer that changes between the check and the connect cannot redirect us: there is no second lookup);
- loopback, private, link-local (cloud metadata at 169.254.169.254 included), multicast, reserved and other
  non-global addresses are refused unless they fall in the configured allow-list (WEBHOOK_ALLOWED_NETWORKS);
- redirects are not followed (http.client never follows them; a 3xx is a failed attempt);
- short connect and read timeouts, and at most 64 KiB of the response is read.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from pawmanity.core.errors import InvalidInput

SCHEMES = {"http": 80, "https": 443}
MAX_RESPONSE_BYTES = 64 * 1024


class UnsafeURL(InvalidInput):
    code = "unsafe_url"


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int


def parse_url(url):
    """The URL's parts, or UnsafeURL for anything but a plain http(s) URL without credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL("The URL cannot be read.", errors={"url": ["Not a valid URL."]}) from None
    if parts.scheme not in SCHEMES:
        raise UnsafeURL("Only http and https URLs are allowed.", errors={"url": ["Use http:// or https://."]})
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("URLs may not carry credentials.", errors={"url": ["Remove user:password@."]})
    if not parts.hostname:
        raise UnsafeURL("The URL has no host.", errors={"url": ["Name a host."]})
    if parts.fragment:
        raise UnsafeURL("The URL may not have a #fragment.", errors={"url": ["Remove the #fragment."]})
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, parts.hostname, port or SCHEMES[parts.scheme], path)


def check_literal_address(target, allowed_networks):
    """At registration: a URL naming an IP address directly is checked at once (hostnames at each delivery)."""
    try:
        address = ipaddress.ip_address(target.host)
    except ValueError:
        return
    check_address(address, allowed_networks)


def check_address(address, allowed_networks):
    if any(address in network for network in allowed_networks):
        return
    if not address.is_global or address.is_multicast:
        raise UnsafeURL(f"The address {address} is not a public one (loopback, private, link-local, metadata "
                        f"or reserved); add its network to WEBHOOK_ALLOWED_NETWORKS to allow it.",
                        errors={"url": ["Resolves to a non-public address."]})


def networks(cidrs):
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def resolve(host, port):
    """Every address the host resolves to (a seam tests replace)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def checked_address(target, allowed_networks):
    """Resolve once; refuse if ANY answer is unsafe (an attacker's DNS may mix a public and a private one)."""
    try:
        answers = resolve(target.host, target.port)
    except OSError as error:
        raise UnsafeURL(f"The host could not be resolved ({error.__class__.__name__}).",
                        errors={"url": ["Unknown host."]}) from None
    if not answers:
        raise UnsafeURL("The host resolved to no address.", errors={"url": ["Unknown host."]})
    addresses = [ipaddress.ip_address(answer.split("%", 1)[0]) for answer in answers]
    for address in addresses:
        check_address(address, allowed_networks)
    return str(addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to an address checked beforehand, with the Host header still naming the host."""

    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is still verified against the host name (SNI included)."""

    def __init__(self, host, port, *, address, timeout, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url, body, headers, *, allowed_networks, timeout):
    """POST body to url under the rules above. Never raises for the network: the outcome says what happened."""
    started = time.monotonic()
    try:
        target = parse_url(url)
        address = checked_address(target, allowed_networks)
        if target.scheme == "https":
            connection = _PinnedHTTPSConnection(target.host, target.port, address=address, timeout=timeout,
                                                 context=ssl.create_default_context())
        else:
            connection = _PinnedHTTPConnection(target.host, target.port, address=address, timeout=timeout)
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(MAX_RESPONSE_BYTES)
            status, error = response.status, None
        finally:
            connection.close()
    except UnsafeURL as refused:
        status, error = None, f"refused: {refused.detail}"
    except (OSError, http.client.HTTPException) as failure:
        status, error = None, f"{failure.__class__.__name__}: {failure}"
    return Outcome(status, error[:300] if error else None, int((time.monotonic() - started) * 1000))
