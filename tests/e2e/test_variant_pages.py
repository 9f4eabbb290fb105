"""Variant-aware pages read over HTTP: the legacy view per fingerprint, the native view and
its variants.json, the response headers of every fingerprint source, 400s for bad
fingerprints, and file URLs that keep one meaning whatever the fingerprint.

The upstream here is JSON-only with absolute URLs (the install tests use an HTML upstream).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from proxy.variants.fingerprint import expand_hardware_spec, parse_hardware_spec

from .builders import BuiltDist, build_wheel, merged_variants_json
from .clients import JSON_ACCEPT, HttpResponse, http_get, http_request
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config
from .upstream_server import Throttle, UpstreamFactory, UpstreamServer
from .variant_support import (
    NULL,
    PROJECT,
    SPEC_WINNERS,
    VARIANT_REQUIRES_PYTHON,
    VERSION,
    ListedFile,
    VariantWheelhouse,
    build_variant_wheelhouse,
    get_page,
    listed_files,
    page_files,
    publish_variants,
    sha256,
    variantlib_order,
)

pytestmark = pytest.mark.e2e

GPU_SPEC = "cpu=x86_64_v3,cuda=12.8,sm=9.0"
HTML = "text/html"
FORMATS = pytest.mark.parametrize("accept", [JSON_ACCEPT, HTML], ids=["json", "html"])
LEGACY_WHEEL = f"{PROJECT}-{VERSION}-py3-none-any.whl"
VARIANTS_JSON = f"{PROJECT}-{VERSION}-variants.json"
PROFILES = {"v3cpu": {"hw": "cpu=x86_64_v3"}, "gpu": {"hw": GPU_SPEC}}


@pytest.fixture(scope="module")
def house(tmp_path_factory: pytest.TempPathFactory) -> VariantWheelhouse:
    return build_variant_wheelhouse(tmp_path_factory.mktemp("vpkg-house"))


@dataclass(frozen=True)
class FlawedProject:
    """A project whose variants.json does not describe every variant wheel it lists."""

    name: str
    plain: BuiltDist
    variants: dict[str, BuiltDist]


def _flawed_project(root: Path, name: str, labels: tuple[str, ...]) -> FlawedProject:
    variants = {
        label: build_wheel(
            root,
            name,
            "1.0",
            variant_label=label,
            variant_properties=[f"x86_64 :: level :: {label.rsplit('_', 1)[1]}"],
        )
        for label in labels
    }
    return FlawedProject(name, build_wheel(root, name, "1.0"), variants)


@pytest.fixture(scope="module")
def partial(tmp_path_factory: pytest.TempPathFactory) -> FlawedProject:
    """`partialpkg`: wheels for x86_64_v3 and x86_64_v4; its variants.json names only v3."""
    return _flawed_project(
        tmp_path_factory.mktemp("partial"), "partialpkg", ("x86_64_v3", "x86_64_v4")
    )


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> FlawedProject:
    """`brokenpkg`: an x86_64_v3 wheel; its variants.json is not JSON."""
    return _flawed_project(tmp_path_factory.mktemp("broken"), "brokenpkg", ("x86_64_v3",))


@pytest.fixture(scope="module")
def variant_upstream(
    house: VariantWheelhouse, partial: FlawedProject, broken: FlawedProject
) -> Iterator[UpstreamServer]:
    server = publish_variants(UpstreamServer("json", absolute_urls=True).start(), house)
    for project in (partial, broken):
        for dist in (project.plain, *project.variants.values()):
            server.add_dist(dist)
    only_v3 = merged_variants_json([partial.variants["x86_64_v3"]])
    server.add_file("partialpkg", "partialpkg-1.0-variants.json", json.dumps(only_v3).encode())
    server.add_file("brokenpkg", "brokenpkg-1.0-variants.json", b'{"variants": ')
    yield server
    server.close()


@pytest.fixture(scope="module")
def served(variant_upstream: UpstreamServer, module_proxy: ProxyLauncher) -> RunningProxy:
    config = proxy_config(module_proxy.new_cache_dir(), [variant_upstream], profiles=PROFILES)
    return module_proxy.start(config)


def _start(launcher: ProxyLauncher, upstream: UpstreamServer, **sections: Any) -> RunningProxy:
    return launcher.start(proxy_config(launcher.new_cache_dir(), [upstream], **sections))


def _page_url(served: RunningProxy, spec: str | None = None, *, native: bool = False) -> str:
    prefix = "/native" if native else ""
    middle = f"/hw/{spec}" if spec is not None else ""
    return f"{served.url}{prefix}{middle}/simple/{PROJECT}/"


def _non_variant_names(house: VariantWheelhouse) -> set[str]:
    return {house.old.filename, house.plain.filename, house.sdist.filename}


# ---- the legacy view -------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "winner"), sorted(SPEC_WINNERS.items()))
def test_expected_winners_are_variantlibs_first_choice(
    house: VariantWheelhouse, spec: str, winner: str
) -> None:
    """The expectations of this module, checked against the reference implementation."""
    supported = [str(p) for p in expand_hardware_spec(parse_hardware_spec(spec)).properties]
    document = json.loads(house.variants_json.data)
    assert variantlib_order(document, supported)[0] == winner


@FORMATS
@pytest.mark.parametrize(("spec", "winner"), sorted(SPEC_WINNERS.items()))
def test_legacy_page_shows_the_best_variant_under_its_legacy_name(
    served: RunningProxy, house: VariantWheelhouse, spec: str, winner: str, accept: str
) -> None:
    files = page_files(_page_url(served, spec), accept=accept)
    assert set(files) == _non_variant_names(house)
    shown = files[LEGACY_WHEEL]
    expected = house.variants[winner]
    assert shown.sha256 == expected.sha256
    assert shown.url.rsplit("/", 1)[1] == LEGACY_WHEEL
    assert http_get(shown.url).body == expected.data


def _upstream_page_url(upstream: UpstreamServer) -> str:
    return f"{upstream.base_url}{upstream.page_path(PROJECT)}"


def test_legacy_json_entry_keeps_the_upstream_file_facts(
    served: RunningProxy, variant_upstream: UpstreamServer, house: VariantWheelhouse
) -> None:
    ours = get_page(_page_url(served, GPU_SPEC)).json()["files"]
    entry = next(e for e in ours if e["filename"] == LEGACY_WHEEL)
    theirs = get_page(_upstream_page_url(variant_upstream)).json()["files"]
    original = next(e for e in theirs if e["filename"] == house.variants["cu128"].filename)
    assert original["requires-python"] == VARIANT_REQUIRES_PYTHON
    for key in ("hashes", "size", "upload-time", "core-metadata", "requires-python"):
        assert entry[key] == original[key], key
    # PEP 691: an absent `yanked` means not yanked.
    assert entry.get("yanked", False) == original["yanked"]


def test_no_fingerprint_page_is_the_upstream_page_minus_variant_files(
    served: RunningProxy, variant_upstream: UpstreamServer, house: VariantWheelhouse
) -> None:
    ours = page_files(_page_url(served))
    upstream = page_files(_upstream_page_url(variant_upstream))
    kept = {
        name: listed.sha256
        for name, listed in upstream.items()
        if name in _non_variant_names(house)
    }
    assert {name: listed.sha256 for name, listed in ours.items()} == kept
    assert http_get(ours[LEGACY_WHEEL].url).body == house.plain.data


@pytest.mark.parametrize(
    ("header", "winner"),
    [
        ("", NULL),
        # Order is preference: v3 first, although v4 is supported too.
        ("x86_64::level::v3 ,  x86_64 :: level :: v4", "x86_64_v3"),
        ("x86_64 :: level :: v4, x86_64 :: level :: v3", "x86_64_v4"),
        ("nvidia :: sm_arch :: 80_real, nvidia :: cuda_version_lower_bound :: 12.6", "cu126"),
        ("aarch64 :: version :: 8a", NULL),
    ],
    ids=["empty", "v3-before-v4", "v4-before-v3", "cuda", "nothing-fits"],
)
def test_variant_properties_header_picks_the_build(
    served: RunningProxy, house: VariantWheelhouse, header: str, winner: str
) -> None:
    files = page_files(_page_url(served), headers={"Variant-Properties": header})
    assert files[LEGACY_WHEEL].sha256 == house.variants[winner].sha256


def test_one_page_url_answers_each_fingerprint_with_its_own_build(
    served: RunningProxy, house: VariantWheelhouse
) -> None:
    asked = [
        ({"Variant-Hardware": GPU_SPEC}, "cu128"),
        ({}, "plain"),
        ({"Variant-Hardware": "cpu=x86_64_v2"}, "x86_64_v2"),
        ({"Variant-Properties": "x86_64 :: level :: v4"}, "x86_64_v4"),
    ]
    for _ in range(2):  # the second round is answered from the rendered-page cache
        for headers, build in asked:
            shown = page_files(_page_url(served), headers=headers)[LEGACY_WHEEL]
            expected = house.plain if build == "plain" else house.variants[build]
            assert shown.sha256 == expected.sha256, (headers, build)


@pytest.mark.parametrize("spec", sorted(SPEC_WINNERS))
def test_headers_mean_what_the_same_spec_in_the_url_means(
    served: RunningProxy, house: VariantWheelhouse, spec: str
) -> None:
    expected = house.variants[SPEC_WINNERS[spec]].sha256
    expanded = expand_hardware_spec(parse_hardware_spec(spec)).header_value()
    for headers in ({"Variant-Hardware": spec}, {"Variant-Properties": expanded}):
        assert page_files(_page_url(served), headers=headers)[LEGACY_WHEEL].sha256 == expected


def _get_with_repeated_header(url: str, name: str, values: list[str]) -> HttpResponse:
    """GET with one field line per value (urllib would send only one)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.putrequest("GET", parts.path)
        connection.putheader("Accept", JSON_ACCEPT)
        for value in values:
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        return HttpResponse(url, answer.status, answer.msg, answer.read())
    finally:
        connection.close()


def test_repeated_variant_properties_lines_are_one_list(
    served: RunningProxy, house: VariantWheelhouse
) -> None:
    # RFC 9110 5.3: field lines of a list-based field mean their comma-joined value. Each
    # line alone fits only the null variant; together they fit cu128.
    lines = ["nvidia :: cuda_version_lower_bound :: 12.8", "nvidia :: sm_arch :: 100_real"]
    joined = page_files(_page_url(served), headers={"Variant-Properties": ", ".join(lines)})
    assert joined[LEGACY_WHEEL].sha256 == house.variants["cu128"].sha256
    response = _get_with_repeated_header(_page_url(served), "Variant-Properties", lines)
    shown = {f.filename: f for f in listed_files(response)}[LEGACY_WHEEL]
    assert shown.sha256 == house.variants["cu128"].sha256


def test_variant_whose_label_is_missing_from_variants_json_is_incompatible(
    served: RunningProxy, partial: FlawedProject
) -> None:
    legacy = page_files(f"{served.url}/hw/cpu=x86_64_v4/simple/{partial.name}/")
    assert legacy[partial.plain.filename].sha256 == partial.variants["x86_64_v3"].sha256
    native = page_files(f"{served.url}/native/hw/cpu=x86_64_v4/simple/{partial.name}/")
    assert partial.variants["x86_64_v4"].filename not in native
    assert partial.variants["x86_64_v3"].filename in native


def test_invalid_variants_json_makes_every_variant_incompatible(
    served: RunningProxy, broken: FlawedProject
) -> None:
    legacy = page_files(f"{served.url}/hw/cpu=x86_64_v3/simple/{broken.name}/")
    assert set(legacy) == {broken.plain.filename}
    assert legacy[broken.plain.filename].sha256 == broken.plain.sha256


def test_variants_json_whose_bytes_do_not_match_the_listed_hash_is_not_trusted(
    make_upstream: UpstreamFactory, proxy: ProxyLauncher, house: VariantWheelhouse
) -> None:
    upstream = publish_variants(make_upstream("json", publish=False), house)
    # Served bytes that differ from the listed hash and claim x86_64_v4 runs on any x86-64.
    tampered = json.loads(house.variants_json.data)
    tampered["variants"]["x86_64_v4"] = {"x86_64": {"level": ["v1"]}}
    upstream.hosted(VARIANTS_JSON).corrupted = json.dumps(tampered).encode()
    running = _start(proxy, upstream)
    shown = page_files(f"{running.url}/hw/cpu=x86_64_v1/simple/{PROJECT}/")[LEGACY_WHEEL]
    assert shown.sha256 != house.variants["x86_64_v4"].sha256
    # Unusable metadata makes the version's variants incompatible: the plain wheel is shown.
    assert shown.sha256 == house.plain.sha256


def test_a_republished_variants_json_is_used_once_the_page_is_refreshed(
    make_upstream: UpstreamFactory,
    proxy: ProxyLauncher,
    partial: FlawedProject,
) -> None:
    """The page lists a new variants.json (new hash, same name) next to a new wheel: once the
    proxy has the new page, it must not keep deciding with the old variants.json bytes."""
    upstream = make_upstream("json", publish=False)
    v3, v4 = partial.variants["x86_64_v3"], partial.variants["x86_64_v4"]
    for dist in (partial.plain, v3):
        upstream.add_dist(dist)
    name = f"{partial.name}-1.0-variants.json"
    upstream.add_file(partial.name, name, json.dumps(merged_variants_json([v3])).encode())
    running = _start(proxy, upstream)
    page_url = f"{running.url}/hw/cpu=x86_64_v4/simple/{partial.name}/"
    assert page_files(page_url)[partial.plain.filename].sha256 == v3.sha256

    upstream.add_dist(v4)
    upstream.add_file(partial.name, name, json.dumps(merged_variants_json([v3, v4])).encode())
    invalidated = http_request(
        f"{running.url}/admin/invalidate/{partial.name}", method="POST", data=b""
    )
    assert invalidated.status == 200, invalidated.text
    page_fetches = upstream.count(upstream.page_path(partial.name))
    shown = page_files(page_url)[partial.plain.filename]
    assert upstream.count(upstream.page_path(partial.name)) == page_fetches + 1  # new page
    assert shown.sha256 == v4.sha256


@pytest.mark.parametrize("build_missing", [False, True], ids=["listed", "built-from-wheels"])
def test_concurrent_first_requests_read_the_variant_metadata_once(
    make_upstream: UpstreamFactory,
    proxy: ProxyLauncher,
    house: VariantWheelhouse,
    build_missing: bool,
) -> None:
    """Clients arriving together at a cold page share one read of the version's variant
    metadata (the variants.json, or each wheel's variant.json ranges), as they share one page
    fetch: a cluster's simultaneous installs must not multiply upstream traffic."""
    upstream = publish_variants(
        make_upstream("json", publish=False), house, with_variants_json=not build_missing
    )
    upstream.throttle = Throttle(chunk_size=256, delay=0.05)  # keeps the first read in flight
    config = {"variants": {"build_missing_variants_json": build_missing}}
    metadata_paths = (
        [upstream.file_path(dist.filename) for dist in house.variants.values()]
        if build_missing
        else [upstream.file_path(VARIANTS_JSON)]
    )

    alone = _start(proxy, upstream, **config)
    assert page_files(f"{alone.url}/hw/{GPU_SPEC}/simple/{PROJECT}/")
    one_client = {path: upstream.count(path) for path in metadata_paths}
    assert all(one_client.values()), one_client

    together = _start(proxy, upstream, **config)
    specs = list(SPEC_WINNERS)
    with ThreadPoolExecutor(len(specs)) as pool:
        pages = list(
            pool.map(lambda spec: get_page(f"{together.url}/hw/{spec}/simple/{PROJECT}/"), specs)
        )
    assert [page.status for page in pages] == [200] * len(specs)
    many_clients = {path: upstream.count(path) - one_client[path] for path in metadata_paths}
    assert many_clients == one_client


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "named"),
    [
        ("/simple/vpkg/", {"Variant-Properties": "x86_64 :: level"}, "'x86_64 :: level'"),
        ("/simple/vpkg/", {"Variant-Properties": "x86_64 :: le vel :: v3"}, "le vel"),
        ("/simple/vpkg/", {"Variant-Hardware": "cpu=x86_64_v9"}, "x86_64_v9"),
        # A bad header is refused even where the URL alone would be fine.
        (f"/hw/{GPU_SPEC}/simple/vpkg/", {"Variant-Hardware": "gpu=h100"}, "'gpu'"),
        ("/hw/cpu=x86_64_v3,gpu=h100/simple/vpkg/", {}, "'gpu'"),
        # ... and a bad URL even where a good header decides the page.
        ("/hw/cpu=pentium/simple/vpkg/", {"Variant-Hardware": GPU_SPEC}, "pentium"),
        ("/hw/cuda=twelve/simple/vpkg/", {}, "twelve"),
        ("/hw/sm=9.0,sm=8.0/simple/vpkg/", {}, "'sm'"),
        ("/p/nope/simple/vpkg/", {}, "'nope'"),
        ("/native/p/nope/simple/vpkg/", {}, "'nope'"),
    ],
    ids=[
        "header-two-parts",
        "header-bad-feature",
        "hardware-header",
        "hardware-header-beside-good-url",
        "spec-unknown-key",
        "spec-bad-beside-good-header",
        "spec-bad-cuda",
        "spec-duplicate-key",
        "unknown-profile",
        "unknown-profile-native",
    ],
)
def test_bad_fingerprint_is_a_400_naming_the_bad_part(
    served: RunningProxy, path: str, headers: dict[str, str], named: str
) -> None:
    response = http_get(served.url + path, headers=headers)
    assert response.status == 400, response.text
    body = response.text.strip()
    assert "\n" not in body
    assert named in body


# ---- the native view ---------------------------------------------------------------------

NATIVE_CASES = {
    None: {"x86_64_v2", "x86_64_v3", "x86_64_v4", "cu126", "cu128", NULL},
    GPU_SPEC: {"x86_64_v2", "x86_64_v3", "cu126", "cu128", NULL},
    "cpu=x86_64_v2": {"x86_64_v2", NULL},
    "cuda=12.8,sm=10.0": {"cu128", NULL},
    "none": {NULL},
}


def _labels_of(house: VariantWheelhouse, files: dict[str, ListedFile]) -> set[str]:
    by_name = {dist.filename: label for label, dist in house.variants.items()}
    return {by_name[name] for name in files if name in by_name}


def _served_variants_json(files: dict[str, ListedFile]) -> dict[str, Any]:
    """The listed variants.json, downloaded through its href and checked against its hash."""
    listed = files[VARIANTS_JSON]
    body = http_get(listed.url).body
    assert sha256(body) == listed.sha256
    document: dict[str, Any] = json.loads(body)
    return document


@FORMATS
@pytest.mark.parametrize(
    ("spec", "compatible"), list(NATIVE_CASES.items()), ids=[str(s) for s in NATIVE_CASES]
)
def test_native_view_lists_compatible_variants_and_exactly_their_variants_json(
    served: RunningProxy,
    house: VariantWheelhouse,
    spec: str | None,
    compatible: set[str],
    accept: str,
) -> None:
    files = page_files(_page_url(served, spec, native=True), accept=accept)
    assert _labels_of(house, files) == compatible
    for label in compatible:
        assert files[house.variants[label].filename].sha256 == house.variants[label].sha256
    assert set(files) - {house.variants[label].filename for label in compatible} == (
        _non_variant_names(house) | {VARIANTS_JSON}
    )
    document = _served_variants_json(files)
    upstream_document = json.loads(house.variants_json.data)
    assert set(document["variants"]) == compatible
    for key in ("$schema", "default-priorities"):
        assert document[key] == upstream_document[key]
    for label in compatible:
        assert document["variants"][label] == upstream_document["variants"][label]


def test_native_view_takes_the_fingerprint_from_a_header(
    served: RunningProxy, house: VariantWheelhouse
) -> None:
    files = page_files(
        _page_url(served, native=True), headers={"Variant-Hardware": "cuda=12.8,sm=10.0"}
    )
    assert _labels_of(house, files) == NATIVE_CASES["cuda=12.8,sm=10.0"]
    assert set(_served_variants_json(files)["variants"]) == {"cu128", NULL}


# ---- response headers ----------------------------------------------------------------------


def _vary(response_vary: str | None) -> set[str]:
    return {part.strip().lower() for part in (response_vary or "").split(",")}


@pytest.mark.parametrize(
    ("path", "headers", "source"),
    [
        ("/simple/vpkg/", {"Variant-Properties": "x86_64 :: level :: v3"}, "header"),
        ("/simple/vpkg/", {"Variant-Hardware": "cpu=x86_64_v3"}, "header"),
        (f"/hw/{GPU_SPEC}/simple/vpkg/", {}, "url"),
        ("/p/gpu/simple/vpkg/", {}, "url"),
        ("/native/p/gpu/simple/vpkg/", {}, "url"),
        ("/simple/vpkg/", {}, "none"),
    ],
    ids=["properties-header", "hardware-header", "hw-url", "profile-url", "native-url", "none"],
)
def test_fingerprint_source_and_vary_headers(
    served: RunningProxy, path: str, headers: dict[str, str], source: str
) -> None:
    response = get_page(served.url + path, headers=headers)
    assert response.status == 200
    assert response.header("Variant-Fingerprint-Source") == source
    assert {"accept", "variant-properties", "variant-hardware"} <= _vary(response.header("Vary"))
    assert "private" not in (response.header("Cache-Control") or "")


def test_client_rule_pages_are_private_and_headers_still_win(
    variant_upstream: UpstreamServer, proxy: ProxyLauncher, house: VariantWheelhouse
) -> None:
    running = _start(
        proxy,
        variant_upstream,
        profiles=PROFILES,
        clients=[{"network": "127.0.0.0/8", "profile": "v3cpu"}],
    )
    by_rule = get_page(running.page_url(PROJECT))
    assert by_rule.header("Variant-Fingerprint-Source") == "client-rule"
    assert "private" in (by_rule.header("Cache-Control") or "")
    shown = {f.filename: f for f in listed_files(by_rule)}[LEGACY_WHEEL]
    assert shown.sha256 == house.variants["x86_64_v3"].sha256

    by_header = get_page(running.page_url(PROJECT), headers={"Variant-Hardware": GPU_SPEC})
    assert by_header.header("Variant-Fingerprint-Source") == "header"
    assert "private" not in (by_header.header("Cache-Control") or "")
    shown = {f.filename: f for f in listed_files(by_header)}[LEGACY_WHEEL]
    assert shown.sha256 == house.variants["cu128"].sha256


def test_default_profile_pages_are_public_without_client_rules(
    variant_upstream: UpstreamServer, proxy: ProxyLauncher, house: VariantWheelhouse
) -> None:
    running = _start(
        proxy, variant_upstream, profiles=PROFILES, variants={"default_profile": "gpu"}
    )
    response = get_page(running.page_url(PROJECT))
    assert response.header("Variant-Fingerprint-Source") == "default"
    assert "private" not in (response.header("Cache-Control") or "")
    shown = {f.filename: f for f in listed_files(response)}[LEGACY_WHEEL]
    assert shown.sha256 == house.variants["cu128"].sha256


def test_pages_chosen_by_a_client_rule_not_matching_are_private(
    variant_upstream: UpstreamServer, proxy: ProxyLauncher, house: VariantWheelhouse
) -> None:
    """With `[[clients]]` rules, the page a client gets without naming a fingerprint depends
    on its address: a client in 10.0.0.0/8 would get the x86_64_v3 build, this loopback client
    gets the default profile's. A shared cache must not hand one to the other."""
    running = _start(
        proxy,
        variant_upstream,
        profiles=PROFILES,
        variants={"default_profile": "gpu"},
        clients=[{"network": "10.0.0.0/8", "profile": "v3cpu"}],
    )
    response = get_page(running.page_url(PROJECT))
    assert response.header("Variant-Fingerprint-Source") == "default"
    shown = {f.filename: f for f in listed_files(response)}[LEGACY_WHEEL]
    assert shown.sha256 == house.variants["cu128"].sha256
    assert "private" in (response.header("Cache-Control") or "")


def test_locally_detected_pages_are_private(
    variant_upstream: UpstreamServer, proxy: ProxyLauncher
) -> None:
    running = _start(proxy, variant_upstream, variants={"detect_local": True})
    response = get_page(running.page_url(PROJECT))
    assert response.status == 200, response.text
    assert response.header("Variant-Fingerprint-Source") == "detected"
    assert "private" in (response.header("Cache-Control") or "")


# ---- one URL, one meaning ------------------------------------------------------------------


def test_file_urls_never_change_meaning(served: RunningProxy, house: VariantWheelhouse) -> None:
    shown_by_spec = {
        spec: page_files(_page_url(served, spec))[LEGACY_WHEEL] for spec in SPEC_WINNERS
    }
    shown_by_spec["(none)"] = page_files(_page_url(served))[LEGACY_WHEEL]
    winners = {**SPEC_WINNERS, "(none)": "plain"}
    for spec, shown in shown_by_spec.items():
        for other, other_shown in shown_by_spec.items():
            same_build = winners[spec] == winners[other]
            assert (shown.url == other_shown.url) == same_build, (spec, other)
    bytes_by_url: dict[str, bytes] = {}
    for shown in shown_by_spec.values():
        body = http_get(shown.url).body
        assert sha256(body) == shown.sha256
        assert bytes_by_url.setdefault(shown.url, body) == body
    # The native view names the same bytes under the variant name, never other bytes.
    native = page_files(_page_url(served, native=True))
    for label, dist in house.variants.items():
        assert http_get(native[dist.filename].url).body == dist.data, label
