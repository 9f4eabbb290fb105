"""Which fingerprint a request gets (pure): CONTRACT.md "Fingerprints", first match wins.

1 `Variant-Properties` header, 2 `Variant-Hardware` header, 3 the URL (`/p/{profile}/`,
`/hw/{spec}/`), 4 `[[clients]]` network rules, 5 the default profile, 6 local detection for
loopback clients (opt-in), 7 none. A malformed header or spec, or an unknown profile, raises
`FingerprintError` naming the bad part; nothing falls back silently.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from proxy.config import ClientRule
from proxy.variants.fingerprint import (
    PROPERTIES_HEADER,
    Fingerprint,
    FingerprintError,
    expand_hardware_spec,
    parse_hardware_spec,
    parse_properties_header,
)

HARDWARE_HEADER = "Variant-Hardware"


# Headers and specs repeat across requests; parsing each once keeps a hot page a dict lookup.
# (Errors are not cached: a bad value is parsed again and answered 400 again.)
_header_fingerprint = functools.lru_cache(maxsize=1024)(parse_properties_header)


@functools.lru_cache(maxsize=1024)
def _spec_fingerprint(text: str) -> Fingerprint:
    return expand_hardware_spec(parse_hardware_spec(text))


@dataclass(frozen=True)
class ResolvedFingerprint:
    fingerprint: Fingerprint | None  # None: nothing is known about the client
    source: str  # header | url | client-rule | default | detected | none
    # Chosen by the client's address: no Vary header can name that, so caches must not share.
    private: bool = False
    # The request headers that decided the page (for Vary).
    headers_used: tuple[str, ...] = ()


def _client_address(remote: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not remote:
        return None
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _joined_header(headers: Mapping[str, str], name: str, separator: str) -> str | None:
    """A header's value; repeated lines count as one comma-joined line (RFC 9110 5.3)."""
    if name not in headers:
        return None
    getall = getattr(headers, "getall", None)
    if getall is None:
        return headers[name]
    return separator.join(getall(name))


def resolve_fingerprint(
    headers: Mapping[str, str],
    *,
    profile: str | None,
    spec: str | None,
    remote: str | None,
    profiles: Mapping[str, Fingerprint],
    clients: Sequence[ClientRule],
    default_profile: str | None,
    detected: Callable[[], Fingerprint] | None,
) -> ResolvedFingerprint:
    """Apply the contract's source order to one request."""
    url_fingerprint: Fingerprint | None = None
    # The URL is always validated, even when a header wins, so a bad URL never passes silently.
    if profile is not None:
        if profile not in profiles:
            raise FingerprintError(f"unknown profile {profile!r}")
        url_fingerprint = profiles[profile]
    elif spec is not None:
        url_fingerprint = _spec_fingerprint(spec)

    for name, separator, parse in (
        (PROPERTIES_HEADER, ", ", _header_fingerprint),
        (HARDWARE_HEADER, ",", _spec_fingerprint),
    ):
        value = _joined_header(headers, name, separator)
        if value is None:
            continue
        try:
            fingerprint = parse(value)
        except FingerprintError as exc:
            raise FingerprintError(f"{name} header: {exc}") from None
        return ResolvedFingerprint(fingerprint, "header", headers_used=(name,))
    if url_fingerprint is not None:
        return ResolvedFingerprint(url_fingerprint, "url")
    address = _client_address(remote)
    if address is not None:
        for rule in clients:
            if address in rule.network:
                return ResolvedFingerprint(profiles[rule.profile], "client-rule", private=True)
    # With network rules (or detection) configured, a page that no header or URL decided
    # still depends on the client's address: a client elsewhere gets another page.
    if default_profile is not None:
        return ResolvedFingerprint(profiles[default_profile], "default", private=bool(clients))
    if detected is not None and address is not None and address.is_loopback:
        return ResolvedFingerprint(detected(), "detected", private=True)
    return ResolvedFingerprint(None, "none", private=bool(clients) or detected is not None)
