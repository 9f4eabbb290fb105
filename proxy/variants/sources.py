"""Which fingerprint a request gets (pure): CONTRACT.md "Fingerprints", first match wins.

`SOURCE_ORDER` is the one place the order is written: 1 `Variant-Properties` header,
2 `Variant-Hardware` header, 3 the URL (`/p/{profile}/`, `/hw/{spec}/`), 4 `[[clients]]`
network rules, 5 the default profile, 6 local detection for loopback clients (opt-in),
7 none. A malformed header or spec, or an unknown profile, raises `FingerprintError` naming
the bad part; nothing falls back silently.

The configured side (profiles, network rules, default, detection) comes in as plain data,
read from the settings through the `FingerprintSettings` protocol (this module imports no
configuration code). `FingerprintResolver` holds it with the caches of parsed headers and
specs; the application owns one, so no cache is global. A new source is a function here,
its place in `SOURCE_ORDER`, and its settings.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from proxy.variants.fingerprint import (
    PROPERTIES_HEADER,
    Fingerprint,
    FingerprintError,
    expand_hardware_spec,
    parse_hardware_spec,
    parse_properties_header,
)

HARDWARE_HEADER = "Variant-Hardware"
# Parsed headers and specs kept by a `FingerprintResolver`.
PARSE_CACHE_ENTRIES = 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ClientRule:
    """A `[[clients]]` rule: clients in `network` get the profile named `profile`."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    profile: str


class FingerprintSettings(Protocol):
    """What the source order reads of the proxy's settings (`proxy.config.Settings`)."""

    @property
    def clients(self) -> Sequence[ClientRule]: ...

    @property
    def default_profile(self) -> str | None: ...

    @property
    def detect_local(self) -> bool: ...


@dataclass(frozen=True)
class ResolvedFingerprint:
    fingerprint: Fingerprint | None  # None: nothing is known about the client
    source: str  # header | url | client-rule | default | detected | none
    # Chosen by the client's address: no Vary header can name that, so caches must not share.
    private: bool = False
    # The request headers that decided the page (for Vary).
    headers_used: tuple[str, ...] = ()


def spec_fingerprint(text: str) -> Fingerprint:
    """The fingerprint of a hardware spec (`cpu=x86_64_v3,cuda=12.8`)."""
    return expand_hardware_spec(parse_hardware_spec(text))


@dataclass(frozen=True)
class SourceConfig:
    """The configured side of the source order."""

    profiles: Mapping[str, Fingerprint]
    clients: Sequence[ClientRule] = ()
    default_profile: str | None = None
    detected: Callable[[], Fingerprint] | None = None
    parse_header: Callable[[str], Fingerprint] = parse_properties_header
    parse_spec: Callable[[str], Fingerprint] = spec_fingerprint


@dataclass(frozen=True)
class FingerprintRequest:
    """What one request says about its client: headers, the URL's fingerprint (already
    checked) and the client's address."""

    headers: Mapping[str, str]
    url_fingerprint: Fingerprint | None
    address: Address | None


def _client_address(remote: str | None) -> Address | None:
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


def _url_fingerprint(
    profile: str | None, spec: str | None, config: SourceConfig
) -> Fingerprint | None:
    if profile is not None:
        if profile not in config.profiles:
            raise FingerprintError(f"unknown profile {profile!r}")
        return config.profiles[profile]
    return config.parse_spec(spec) if spec is not None else None


# -- the sources, each a function of the request and the configuration ------------------


def from_headers(request: FingerprintRequest, config: SourceConfig) -> ResolvedFingerprint | None:
    """The first fingerprint header's fingerprint (errors name the header)."""
    for name, separator, parse in (
        (PROPERTIES_HEADER, ", ", config.parse_header),
        (HARDWARE_HEADER, ",", config.parse_spec),
    ):
        value = _joined_header(request.headers, name, separator)
        if value is None:
            continue
        try:
            fingerprint = parse(value)
        except FingerprintError as exc:
            raise FingerprintError(f"{name} header: {exc}") from None
        return ResolvedFingerprint(fingerprint, "header", headers_used=(name,))
    return None


def from_url(request: FingerprintRequest, config: SourceConfig) -> ResolvedFingerprint | None:
    fingerprint = request.url_fingerprint
    return ResolvedFingerprint(fingerprint, "url") if fingerprint is not None else None


def from_client_rules(
    request: FingerprintRequest, config: SourceConfig
) -> ResolvedFingerprint | None:
    address = request.address
    if address is None:
        return None
    for rule in config.clients:
        if address in rule.network:
            return ResolvedFingerprint(config.profiles[rule.profile], "client-rule", private=True)
    return None


def from_default_profile(
    request: FingerprintRequest, config: SourceConfig
) -> ResolvedFingerprint | None:
    if config.default_profile is None:
        return None
    # With network rules configured, a page that no header or URL decided still depends on
    # the client's address: a client elsewhere gets another page.
    profile = config.profiles[config.default_profile]
    return ResolvedFingerprint(profile, "default", private=bool(config.clients))


def from_detection(request: FingerprintRequest, config: SourceConfig) -> ResolvedFingerprint | None:
    address = request.address
    if config.detected is None or address is None or not address.is_loopback:
        return None
    return ResolvedFingerprint(config.detected(), "detected", private=True)


Source = Callable[[FingerprintRequest, SourceConfig], ResolvedFingerprint | None]

SOURCE_ORDER: tuple[Source, ...] = (
    from_headers,
    from_url,
    from_client_rules,
    from_default_profile,
    from_detection,
)


def resolve_request(
    headers: Mapping[str, str],
    config: SourceConfig,
    *,
    profile: str | None = None,
    spec: str | None = None,
    remote: str | None = None,
) -> ResolvedFingerprint:
    """Apply the contract's source order to one request."""
    # The URL is always checked, even when a header wins, so a bad URL never passes silently.
    request = FingerprintRequest(
        headers, _url_fingerprint(profile, spec, config), _client_address(remote)
    )
    for source in SOURCE_ORDER:
        resolved = source(request, config)
        if resolved is not None:
            return resolved
    # With network rules (or detection) configured, no fingerprint depends on the address too.
    private = bool(config.clients) or config.detected is not None
    return ResolvedFingerprint(None, "none", private=private)


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
    """Apply the contract's source order to one request (no caches of parsed values)."""
    config = SourceConfig(profiles, tuple(clients), default_profile, detected)
    return resolve_request(headers, config, profile=profile, spec=spec, remote=remote)


class FingerprintResolver:
    """The source order with this proxy's configuration, and caches of parsed values.

    Headers and specs repeat across requests; parsing each once keeps a hot page a dict
    lookup. (Errors are not cached: a bad value is parsed again and answered 400 again.)
    """

    def __init__(
        self,
        profiles: Mapping[str, Fingerprint],
        clients: Sequence[ClientRule] = (),
        default_profile: str | None = None,
        detected: Callable[[], Fingerprint] | None = None,
    ) -> None:
        self.profiles = profiles
        self.config = SourceConfig(
            profiles,
            tuple(clients),
            default_profile,
            detected,
            parse_header=functools.lru_cache(PARSE_CACHE_ENTRIES)(parse_properties_header),
            parse_spec=functools.lru_cache(PARSE_CACHE_ENTRIES)(spec_fingerprint),
        )

    @classmethod
    def configure(
        cls,
        settings: FingerprintSettings,
        profiles: Mapping[str, Fingerprint],
        detect: Callable[[], Fingerprint],
    ) -> FingerprintResolver:
        """The resolver of a proxy with `settings`; `detect` is called only when local
        detection is switched on and a loopback client is left to it."""
        detected = detect if settings.detect_local else None
        return cls(profiles, settings.clients, settings.default_profile, detected)

    def resolve(
        self,
        headers: Mapping[str, str],
        *,
        profile: str | None = None,
        spec: str | None = None,
        remote: str | None = None,
    ) -> ResolvedFingerprint:
        """The fingerprint of one request (or of the command line's equivalent of one)."""
        return resolve_request(headers, self.config, profile=profile, spec=spec, remote=remote)
