"""Which fingerprint a request gets: CONTRACT.md "Fingerprints", sources 1-7, first match wins."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence

import pytest
from multidict import CIMultiDict

from proxy.config import ClientRule
from proxy.variants.fingerprint import (
    EMPTY_FINGERPRINT,
    Fingerprint,
    FingerprintError,
    expand_hardware_spec,
    parse_hardware_spec,
    parse_properties_header,
)
from proxy.variants.sources import HARDWARE_HEADER, ResolvedFingerprint, resolve_fingerprint

HEADER_FP = parse_properties_header("acme :: color :: blue, acme :: color :: red")
HW_SPEC = "cpu=x86_64_v2"
HW_FP = expand_hardware_spec(parse_hardware_spec(HW_SPEC))
URL_SPEC = "cpu=aarch64_8.2a"
URL_SPEC_FP = expand_hardware_spec(parse_hardware_spec(URL_SPEC))
PROFILES: dict[str, Fingerprint] = {
    "gpu": parse_properties_header("nvidia :: sm_arch :: 90_real"),
    "lab": parse_properties_header("acme :: lab :: on"),
    "office": parse_properties_header("acme :: office :: on"),
    "fallback": parse_properties_header("acme :: fallback :: on"),
}
DETECTED = parse_properties_header("acme :: detected :: on")
CLIENTS = (
    ClientRule(ipaddress.ip_network("10.20.0.0/16"), "lab"),
    ClientRule(ipaddress.ip_network("10.0.0.0/8"), "office"),
    ClientRule(ipaddress.ip_network("fd00::/8"), "gpu"),
)


def detect() -> Fingerprint:
    return DETECTED


def resolve(
    headers: Mapping[str, str] | None = None,
    *,
    profile: str | None = None,
    spec: str | None = None,
    remote: str | None = "192.0.2.7",
    clients: Sequence[ClientRule] = CLIENTS,
    default_profile: str | None = None,
    detected: Callable[[], Fingerprint] | None = None,
) -> ResolvedFingerprint:
    return resolve_fingerprint(
        headers if headers is not None else {},
        profile=profile,
        spec=spec,
        remote=remote,
        profiles=PROFILES,
        clients=clients,
        default_profile=default_profile,
        detected=detected,
    )


# --- each source alone ---------------------------------------------------------------------


def test_properties_header() -> None:
    resolved = resolve({"Variant-Properties": "acme :: color :: blue, acme :: color :: red"})
    assert resolved == ResolvedFingerprint(
        HEADER_FP, "header", private=False, headers_used=("Variant-Properties",)
    )


def test_properties_header_whitespace_around_separators_is_ignored() -> None:
    resolved = resolve({"Variant-Properties": "  acme::color ::blue ,acme  ::  color::red  "})
    assert resolved.fingerprint == HEADER_FP


def test_empty_properties_header_is_a_known_empty_fingerprint() -> None:
    resolved = resolve({"Variant-Properties": ""}, profile="gpu", default_profile="fallback")
    assert resolved.fingerprint == EMPTY_FINGERPRINT
    assert resolved.fingerprint is not None and resolved.fingerprint.is_empty
    assert resolved.source == "header"


def test_blank_properties_header_is_a_known_empty_fingerprint() -> None:
    assert resolve({"Variant-Properties": "   "}).fingerprint == EMPTY_FINGERPRINT


def test_repeated_properties_header_lines_count_as_one_comma_joined_header() -> None:
    # RFC 9110 section 5.3: repeated field lines of a list-valued field mean the same as one
    # line with the values joined by commas; dropping the second line loses preferences.
    headers = CIMultiDict(
        [
            ("Variant-Properties", "acme :: color :: blue"),
            ("Variant-Properties", "acme :: color :: red"),
        ]
    )
    assert resolve(headers).fingerprint == HEADER_FP


def test_hardware_header() -> None:
    resolved = resolve({HARDWARE_HEADER: HW_SPEC})
    assert resolved == ResolvedFingerprint(HW_FP, "header", headers_used=(HARDWARE_HEADER,))


def test_hardware_header_none_is_a_known_empty_fingerprint() -> None:
    assert resolve({HARDWARE_HEADER: "none"}).fingerprint == EMPTY_FINGERPRINT


def test_headers_are_matched_case_insensitively_in_a_request_header_mapping() -> None:
    headers = CIMultiDict({"variant-properties": "acme :: color :: blue, acme :: color :: red"})
    assert resolve(headers).fingerprint == HEADER_FP
    assert resolve(CIMultiDict({"variant-hardware": HW_SPEC})).fingerprint == HW_FP


def test_url_profile() -> None:
    assert resolve(profile="gpu") == ResolvedFingerprint(PROFILES["gpu"], "url")


def test_url_spec() -> None:
    assert resolve(spec=URL_SPEC) == ResolvedFingerprint(URL_SPEC_FP, "url")


def test_url_spec_none_is_a_known_empty_fingerprint() -> None:
    assert resolve(spec="none") == ResolvedFingerprint(EMPTY_FINGERPRINT, "url")


def test_client_rule_first_matching_rule_wins_and_is_private() -> None:
    assert resolve(remote="10.20.3.4") == ResolvedFingerprint(
        PROFILES["lab"], "client-rule", private=True
    )
    assert resolve(remote="10.99.3.4") == ResolvedFingerprint(
        PROFILES["office"], "client-rule", private=True
    )


def test_client_rule_for_ipv6_client() -> None:
    assert resolve(remote="fd12::5").fingerprint == PROFILES["gpu"]


def test_ipv4_mapped_ipv6_client_matches_ipv4_rules() -> None:
    resolved = resolve(remote="::ffff:10.20.3.4")
    assert resolved == ResolvedFingerprint(PROFILES["lab"], "client-rule", private=True)


def test_ipv4_client_against_only_ipv6_rules_does_not_crash() -> None:
    rules = (ClientRule(ipaddress.ip_network("fd00::/8"), "gpu"),)
    # Nothing matched, but with rules configured the page still depends on the address.
    assert resolve(remote="10.20.3.4", clients=rules) == ResolvedFingerprint(
        None, "none", private=True
    )
    assert resolve(remote="fe80::1", clients=CLIENTS[:2]) == ResolvedFingerprint(
        None, "none", private=True
    )


@pytest.mark.parametrize("remote", [None, "", "not-an-address", "unix:/run/proxy.sock"])
def test_unknown_client_address_matches_no_rule(remote: str | None) -> None:
    rules = (ClientRule(ipaddress.ip_network("0.0.0.0/0"), "lab"),)
    assert resolve(remote=remote, clients=rules) == ResolvedFingerprint(None, "none", private=True)


def test_default_profile() -> None:
    assert resolve(default_profile="fallback", clients=()) == ResolvedFingerprint(
        PROFILES["fallback"], "default"
    )


@pytest.mark.parametrize("remote", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_detection_for_loopback_clients_is_private(remote: str) -> None:
    assert resolve(remote=remote, detected=detect) == ResolvedFingerprint(
        DETECTED, "detected", private=True
    )


@pytest.mark.parametrize("remote", ["192.0.2.7", "10.1.2.3", "fd12::1", None])
def test_no_detection_for_other_clients(remote: str | None) -> None:
    # Private: a loopback client would have been given the detected fingerprint instead.
    assert resolve(remote=remote, detected=detect, clients=()) == ResolvedFingerprint(
        None, "none", private=True
    )


def test_no_detection_unless_enabled() -> None:
    assert resolve(remote="127.0.0.1", clients=()) == ResolvedFingerprint(None, "none")


def test_nothing_matched_means_nothing_is_known() -> None:
    resolved = resolve(clients=())
    assert resolved.fingerprint is None
    assert resolved.source == "none"
    assert resolved.private is False
    assert resolved.headers_used == ()


def test_detection_is_only_called_when_it_is_the_source() -> None:
    calls: list[int] = []

    def counting() -> Fingerprint:
        calls.append(1)
        return DETECTED

    resolve({"Variant-Properties": ""}, remote="127.0.0.1", detected=counting)
    resolve(profile="gpu", remote="127.0.0.1", detected=counting)
    resolve(default_profile="fallback", remote="127.0.0.1", detected=counting)
    assert calls == []
    resolve(remote="127.0.0.1", detected=counting)
    assert calls == [1]


# --- precedence, pair by pair --------------------------------------------------------------


def test_properties_header_beats_hardware_header() -> None:
    resolved = resolve({"Variant-Properties": "acme :: color :: blue", HARDWARE_HEADER: HW_SPEC})
    assert resolved.fingerprint == parse_properties_header("acme :: color :: blue")
    assert resolved.headers_used == ("Variant-Properties",)


def test_hardware_header_beats_url() -> None:
    resolved = resolve({HARDWARE_HEADER: HW_SPEC}, profile="gpu")
    assert resolved.fingerprint == HW_FP
    assert resolved.source == "header"


def test_properties_header_beats_url_spec() -> None:
    resolved = resolve({"Variant-Properties": "acme :: color :: blue"}, spec=URL_SPEC)
    assert resolved.source == "header"


def test_url_beats_client_rule_and_is_not_private() -> None:
    resolved = resolve(profile="gpu", remote="10.20.3.4")
    assert resolved == ResolvedFingerprint(PROFILES["gpu"], "url", private=False)


def test_client_rule_beats_default_profile() -> None:
    resolved = resolve(remote="10.20.3.4", default_profile="fallback")
    assert resolved.source == "client-rule"
    assert resolved.fingerprint == PROFILES["lab"]


def test_default_profile_beats_detection() -> None:
    resolved = resolve(remote="127.0.0.1", default_profile="fallback", detected=detect, clients=())
    assert resolved == ResolvedFingerprint(PROFILES["fallback"], "default", private=False)


def test_client_rule_beats_detection_for_a_loopback_rule() -> None:
    rules = (ClientRule(ipaddress.ip_network("127.0.0.0/8"), "lab"),)
    resolved = resolve(remote="127.0.0.1", clients=rules, detected=detect)
    assert resolved.source == "client-rule"


def test_private_exactly_when_the_page_depends_on_the_client_address() -> None:
    cases = {
        "header": resolve({"Variant-Properties": "acme :: a :: b"}, remote="10.20.0.1"),
        "url": resolve(spec=URL_SPEC, remote="127.0.0.1", detected=detect),
        "client-rule": resolve(remote="10.20.0.1"),
        "default": resolve(remote="192.0.2.1", default_profile="fallback"),
        "detected": resolve(remote="::1", detected=detect),
        "none": resolve(remote="192.0.2.1"),
    }
    assert {source: r.source for source, r in cases.items()} == {s: s for s in cases}
    # Network rules are configured: default and none pages would differ for a client inside
    # one of the rules' networks, so they are private too.
    assert {source for source, r in cases.items() if r.private} == {
        "client-rule",
        "detected",
        "default",
        "none",
    }
    # Without rules or detection, only the header/URL/default decide: shareable.
    assert not resolve(remote="192.0.2.1", default_profile="fallback", clients=()).private
    assert not resolve(remote="192.0.2.1", clients=()).private


# --- errors: never a silent fallback -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("acme :: color", "acme :: color"),
        ("acme :: Color :: blue", "Color"),
        ("acme :: color :: blue,,acme :: color :: red", "item 2"),
        ("acme :: color :: blue!", "blue!"),
    ],
)
def test_bad_properties_header_names_the_header_and_the_bad_item(value: str, named: str) -> None:
    with pytest.raises(FingerprintError) as caught:
        resolve({"Variant-Properties": value}, default_profile="fallback")
    message = str(caught.value)
    assert "Variant-Properties" in message
    assert named in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("cpu=x86_64_v9", "x86_64_v9"),
        ("gpu=h100", "gpu"),
        ("", "empty"),
        ("cuda=twelve", "twelve"),
    ],
)
def test_bad_hardware_header_names_the_header_and_the_bad_part(value: str, named: str) -> None:
    with pytest.raises(FingerprintError) as caught:
        resolve({HARDWARE_HEADER: value}, profile="gpu")
    assert HARDWARE_HEADER in str(caught.value)
    assert named in str(caught.value)


def test_bad_header_is_refused_even_when_a_later_source_would_match() -> None:
    with pytest.raises(FingerprintError):
        resolve(
            {"Variant-Properties": "bogus"},
            profile="gpu",
            remote="10.20.0.1",
            default_profile="fallback",
        )


def test_unknown_url_profile_is_named() -> None:
    with pytest.raises(FingerprintError, match="unknown profile 'nope'"):
        resolve(profile="nope", default_profile="fallback")


def test_bad_url_spec_is_named() -> None:
    with pytest.raises(FingerprintError, match="bogus"):
        resolve(spec="bogus=1")


def test_bad_url_is_refused_even_when_a_header_wins() -> None:
    with pytest.raises(FingerprintError, match="unknown profile 'nope'"):
        resolve({"Variant-Properties": "acme :: color :: blue"}, profile="nope")
    with pytest.raises(FingerprintError, match="x86_64_v7"):
        resolve({HARDWARE_HEADER: HW_SPEC}, spec="cpu=x86_64_v7")


def test_a_bad_value_is_refused_again_on_every_request() -> None:
    for _ in range(2):
        with pytest.raises(FingerprintError):
            resolve({"Variant-Properties": "acme :: color"})
