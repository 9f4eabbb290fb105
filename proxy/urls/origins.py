"""Origins (scheme, host, port) of upstream URLs: where credentials may go, and which
redirects the proxy follows.

pip scopes an index's credentials by scheme, host and port, and so does the proxy: another
port of the same host is another origin (another service) and gets neither the credentials
nor a redirect that no page pointed at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of an http(s) URL, the port made explicit; None for anything else."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port
    except ValueError:  # an out-of-range or non-numeric port
        return None
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


def same_origin(url: str, origin: Origin | None) -> bool:
    return origin is not None and origin_of(url) == origin


@dataclass(frozen=True, slots=True)
class RedirectTargets:
    """Where a redirect may lead: the origins a page listed (and the upstream's own), the same
    hosts upgraded to https on its default port, and hosts the operator allowed by name."""

    origins: frozenset[Origin]
    hosts: frozenset[str]

    @classmethod
    def of(cls, urls: Iterable[str], allowed_hosts: Iterable[str] = ()) -> RedirectTargets:
        origins = {origin for origin in map(origin_of, urls) if origin is not None}
        return cls(frozenset(origins), frozenset(h.lower() for h in allowed_hosts))

    def allows(self, url: str) -> bool:
        origin = origin_of(url)
        if origin is None:
            return False
        scheme, host, port = origin
        if origin in self.origins or host in self.hosts:
            return True
        upgrade = scheme == "https" and port == DEFAULT_PORTS["https"]
        return upgrade and any(host == listed for _, listed, _ in self.origins)
