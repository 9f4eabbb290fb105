"""The pipeline's parts that need no network: the error table, the configured fingerprint
resolver (source order, caches, settings it reads) and the variants.json subset cache."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

import pytest

from proxy.pipeline import FileNotListed, SubsetCache
from proxy.server.errors import BadRequest, error_answer
from proxy.simple.api import UnknownFormat
from proxy.store.errors import HashMismatch
from proxy.upstreams.offline import NotInMirror
from proxy.upstreams.projects import ProjectNotFound
from proxy.upstreams.source import UpstreamError, UpstreamNotFound
from proxy.urls.paths import BadPath
from proxy.variants.fingerprint import FingerprintError, parse_properties_header
from proxy.variants.sources import (
    SOURCE_ORDER,
    ClientRule,
    FingerprintResolver,
    from_client_rules,
    from_default_profile,
    from_detection,
    from_headers,
    from_url,
)

VARIANTS_JSON = json.dumps(
    {
        "$schema": "https://variants-schema.wheelnext.dev/peps/825/v0.1.1.json",
        "default-priorities": {"namespace": ["acme"]},
        "variants": {
            "blue": {"acme": {"color": ["blue"]}},
            "red": {"acme": {"color": ["red"]}},
        },
    }
).encode()


@pytest.mark.parametrize(
    ("exc", "status", "body"),
    [
        (BadRequest("bad label list 'x'"), 400, "bad label list 'x'"),
        (BadPath("bad path"), 400, "bad path"),
        (FingerprintError("unknown profile 'gpu'"), 400, "unknown profile 'gpu'"),
        (UnknownFormat("unknown ?format= value"), 400, "unknown ?format= value"),
        (ProjectNotFound("torch"), 404, "no upstream has project torch"),
        (FileNotListed("torch", "sha256-ab"), 404, "no file sha256-ab is listed for project torch"),
        (UpstreamNotFound("x"), 404, "not found upstream"),
        (NotInMirror("x.whl"), 404, "not in the offline mirror: x.whl"),
        (UpstreamError("index.example: 503"), 502, "index.example: 503"),
        (
            UpstreamError("index.example: timed out", timed_out=True),
            504,
            "index.example: timed out",
        ),
        (HashMismatch("sha256 of x.whl does not match"), 502, "sha256 of x.whl does not match"),
    ],
)
def test_each_known_failure_has_one_status_and_one_line(
    exc: Exception, status: int, body: str
) -> None:
    response = error_answer(exc)
    assert response is not None
    assert response.status == status
    assert response.text == body + "\n"
    assert response["reason"] == body


def test_an_unexpected_exception_is_not_answered() -> None:
    assert error_answer(KeyError("bug")) is None
    assert error_answer(RuntimeError("bug")) is None


def test_the_source_order_is_written_once_in_the_contracts_order() -> None:
    assert (
        from_headers,
        from_url,
        from_client_rules,
        from_default_profile,
        from_detection,
    ) == SOURCE_ORDER


@dataclass(frozen=True)
class _Settings:
    clients: tuple[ClientRule, ...] = ()
    default_profile: str | None = None
    detect_local: bool = False


PROFILES = {"lab": parse_properties_header("acme :: lab :: on")}
DETECTED = parse_properties_header("acme :: detected :: on")


def test_the_resolver_reads_detection_from_the_settings() -> None:
    calls: list[int] = []

    def detect() -> object:
        calls.append(1)
        return DETECTED

    off = FingerprintResolver.configure(_Settings(), PROFILES, detect)  # type: ignore[arg-type]
    assert off.resolve({}, remote="127.0.0.1").source == "none"
    assert calls == []
    on = FingerprintResolver.configure(
        _Settings(detect_local=True),
        PROFILES,
        detect,  # type: ignore[arg-type]
    )
    resolved = on.resolve({}, remote="127.0.0.1")
    assert (resolved.source, resolved.fingerprint, resolved.private) == ("detected", DETECTED, True)


def test_the_resolver_reads_rules_and_default_from_the_settings() -> None:
    settings = _Settings(
        clients=(ClientRule(ipaddress.ip_network("10.0.0.0/8"), "lab"),), default_profile="lab"
    )
    resolver = FingerprintResolver.configure(settings, PROFILES, lambda: DETECTED)
    assert resolver.resolve({}, remote="10.1.2.3").source == "client-rule"
    fallback = resolver.resolve({}, remote="192.0.2.1")
    assert (fallback.source, fallback.private) == ("default", True)


def test_the_resolver_parses_a_repeated_header_once_and_a_bad_one_every_time() -> None:
    resolver = FingerprintResolver(PROFILES)
    header = {"Variant-Properties": "acme :: color :: blue"}
    first = resolver.resolve(header).fingerprint
    assert resolver.resolve(header).fingerprint is first
    for _ in range(2):
        with pytest.raises(FingerprintError, match="Variant-Properties header"):
            resolver.resolve({"Variant-Properties": "not a property"})


def test_a_subset_is_made_once_per_file_labels_and_bytes() -> None:
    subsets = SubsetCache()
    blue = subsets.subset("sha256-aa", ("blue",), VARIANTS_JSON)
    assert set(json.loads(blue)["variants"]) == {"blue"}
    assert subsets.subset("sha256-aa", ("blue",), VARIANTS_JSON) is blue
    both = subsets.subset("sha256-aa", ("blue", "red"), VARIANTS_JSON)
    assert set(json.loads(both)["variants"]) == {"blue", "red"}
    # Other bytes under the same id (a file id from a URL) are subset again.
    changed = VARIANTS_JSON.replace(b'"red"', b'"green"')
    assert set(json.loads(subsets.subset("sha256-aa", ("blue", "green"), changed))["variants"]) == {
        "blue",
        "green",
    }
