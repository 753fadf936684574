"""Which URLs a tenant may register as a webhook endpoint.

HTTPS only, with a host name or a public address; no user name or password in the URL, no fragment.
``http://localhost`` (127.0.0.1, [::1]) is accepted only with ``allow_http_localhost`` — tests and
local development. Addresses that point inside the platform's network (loopback, private, link-local,
e.g. a cloud metadata service) are refused when written as IP addresses; a host *name* that resolves to
one is not caught here (see docs/operations.md: egress rules for the dispatcher).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

MAX_URL = 2_048
LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


class BadUrl(ValueError):
    pass


def check_endpoint_url(url: str, *, allow_http_localhost: bool) -> str:
    """``url`` if it may receive webhooks; else ``BadUrl`` saying why."""
    if len(url) > MAX_URL:
        raise BadUrl(f"longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise BadUrl(f"not a URL: {exc}") from None
    if not host:
        raise BadUrl("no host")
    if parts.username is not None or parts.password is not None:
        raise BadUrl("credentials in the URL are not allowed (use the signature to authenticate modelyard)")
    if parts.fragment:
        raise BadUrl("a fragment is not allowed")
    local = host in LOCAL_NAMES
    if parts.scheme == "http":
        if not (local and allow_http_localhost):
            raise BadUrl("must be https (http only for localhost, with the development setting webhooks.allow_http_localhost)")
    elif parts.scheme != "https":
        raise BadUrl("must be https")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and not (local and allow_http_localhost) and (
            address.is_private or address.is_loopback or address.is_link_local or address.is_reserved or address.is_multicast):
        raise BadUrl(f"{host} is not a public address")
    if local and not allow_http_localhost:
        raise BadUrl("localhost is only allowed with the development setting webhooks.allow_http_localhost")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise BadUrl("bad port") from None
    return url
