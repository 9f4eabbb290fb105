"""Upstream failures in words: what went wrong with which host, for logs and 502 bodies.

An operator reads "cannot reach files.example:443 (upstream main): connection refused",
not an aiohttp class name; the host named is the one the request went to, which for a
listed file may not be the upstream's own host.
"""

from __future__ import annotations

import errno
from urllib.parse import urlsplit

import aiohttp

from proxy.upstreams.source import redact

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "connection closed",
}


def host_of(url: str) -> str:
    """`host:port` of a URL (the port the scheme implies when none is written)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    host = parts.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe(exc: BaseException) -> str:
    """A few words for a client-side failure: "connection refused", "host name not found"."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "host name not found"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate not accepted: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS handshake failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the response body was cut off"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _os_words(exc.os_error)
    if isinstance(exc, OSError):
        return _os_words(exc)
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _os_words(error: OSError) -> str:
    if error.errno in _ERRNO_WORDS:
        return _ERRNO_WORDS[error.errno]
    return (error.strerror or str(error) or type(error).__name__).lower()


def unreachable(upstream: str, url: str, exc: BaseException) -> str:
    """The one-line reason for a request that got no answer."""
    return f"cannot reach {host_of(url)} (upstream {upstream}) for {redact(url)}: {describe(exc)}"


def broke_off(upstream: str, url: str, exc: BaseException) -> str:
    """The one-line reason for an answer that stopped half-way."""
    return f"{host_of(url)} (upstream {upstream}) broke off {redact(url)}: {describe(exc)}"
