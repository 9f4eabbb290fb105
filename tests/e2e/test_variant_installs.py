"""Real pip and uv install `vpkg` through the proxy and get the build made for the hardware
the request names: in the URL (`/hw/{spec}/`, `/p/{profile}/`), in request headers (sent by
a forward proxy, since pip cannot add headers), by the client's network, by the default
profile, or nothing at all (the plain wheel, as straight from the upstream).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .clients import (
    ToolResult,
    build_marker,
    installed_versions,
    pip_install,
    run_pip,
    uv_install,
    wait_until,
)
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config
from .upstream_server import UpstreamFactory, UpstreamServer
from .variant_support import (
    PLAIN,
    PROJECT,
    VERSION,
    HeaderInjectingProxy,
    VariantWheelhouse,
    build_variant_wheelhouse,
    page_files,
    pip_install_via,
    publish_variants,
)

pytestmark = pytest.mark.e2e

GPU_SPEC = "cpu=x86_64_v3,cuda=12.8,sm=9.0"
PROFILES = {
    "gpu": {"hw": GPU_SPEC},
    "v3cpu": {"hw": "cpu=x86_64_v3"},
    "v4list": {"properties": ["x86_64 :: level :: v4", "x86_64 :: level :: v3"]},
}
LEGACY_WHEEL = f"{PROJECT}-{VERSION}-py3-none-any.whl"


@pytest.fixture(scope="module")
def house(tmp_path_factory: pytest.TempPathFactory) -> VariantWheelhouse:
    return build_variant_wheelhouse(tmp_path_factory.mktemp("vpkg-house"))


@pytest.fixture(scope="module")
def variant_upstream(house: VariantWheelhouse) -> Iterator[UpstreamServer]:
    server = publish_variants(UpstreamServer("html").start(), house)
    yield server
    server.close()


def _start(launcher: ProxyLauncher, upstream: UpstreamServer, **sections: Any) -> RunningProxy:
    return launcher.start(proxy_config(launcher.new_cache_dir(), [upstream], **sections))


@pytest.fixture(scope="module")
def served(variant_upstream: UpstreamServer, module_proxy: ProxyLauncher) -> RunningProxy:
    """Profiles only: no client rules, no default profile, no local detection."""
    return _start(module_proxy, variant_upstream, profiles=PROFILES)


def _installed_build(target: Path) -> str:
    assert installed_versions(target) == {PROJECT: VERSION}
    return build_marker(target, PROJECT)


# ---- the URL -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (GPU_SPEC, "cu128"),
        ("cpu=x86_64_v4,cuda=12.6,sm=8.0", "cu126"),
        ("cpu=x86_64_v3", "x86_64_v3"),
        ("cpu=aarch64", "null"),
        ("none", "null"),
    ],
)
def test_pip_installs_the_build_for_a_hardware_spec(
    served: RunningProxy, tmp_path: Path, spec: str, expected: str
) -> None:
    pip_install(f"{served.url}/hw/{spec}/simple/", [PROJECT], tmp_path)
    assert _installed_build(tmp_path) == expected


@pytest.mark.parametrize(
    ("profile", "expected"),
    [("gpu", "cu128"), ("v4list", "x86_64_v4")],
    ids=["hw-profile", "properties-profile"],
)
def test_pip_installs_the_build_for_a_profile(
    served: RunningProxy, tmp_path: Path, profile: str, expected: str
) -> None:
    pip_install(f"{served.url}/p/{profile}/simple/", [PROJECT], tmp_path)
    assert _installed_build(tmp_path) == expected


@pytest.mark.parametrize(
    ("spec", "expected"), [(GPU_SPEC, "cu128"), ("cpu=x86_64_v2", "x86_64_v2")]
)
def test_uv_installs_the_build_for_a_hardware_spec(
    served: RunningProxy, tmp_path: Path, spec: str, expected: str
) -> None:
    uv_install(f"{served.url}/hw/{spec}/simple/", [PROJECT], tmp_path)
    assert _installed_build(tmp_path) == expected


# ---- request headers, through a forward proxy ----------------------------------------------


@pytest.mark.parametrize(
    ("headers", "index_path", "expected"),
    [
        (
            {"Variant-Properties": "x86_64 :: level :: v4, x86_64 :: level :: v3"},
            "/simple/",
            "x86_64_v4",
        ),
        ({"Variant-Hardware": "cuda=12.8,sm=10.0"}, "/simple/", "cu128"),
        # A header outranks the URL.
        ({"Variant-Hardware": "cpu=x86_64_v2"}, f"/hw/{GPU_SPEC}/simple/", "x86_64_v2"),
    ],
    ids=["properties", "hardware", "header-beats-url"],
)
def test_pip_installs_the_build_for_request_headers(
    served: RunningProxy,
    tmp_path: Path,
    headers: dict[str, str],
    index_path: str,
    expected: str,
) -> None:
    forward = HeaderInjectingProxy(headers).start()
    try:
        pip_install_via(forward.url, served.url + index_path, [PROJECT], tmp_path)
        paths = forward.forwarded_paths()
    finally:
        forward.close()
    assert _installed_build(tmp_path) == expected
    # pip really went through the header-adding proxy for the page and the file.
    assert f"{index_path}{PROJECT}/" in paths
    assert any(path.endswith("/" + LEGACY_WHEEL) for path in paths), paths


# ---- the client's network and the default profile -----------------------------------------


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ("127.0.0.0/8", "x86_64_v3"),  # the rule matches loopback: it beats the default profile
        ("10.0.0.0/8", "cu128"),  # another network: the default profile decides
    ],
)
def test_client_rule_against_the_default_profile(
    variant_upstream: UpstreamServer,
    proxy: ProxyLauncher,
    tmp_path: Path,
    network: str,
    expected: str,
) -> None:
    running = _start(
        proxy,
        variant_upstream,
        profiles=PROFILES,
        variants={"default_profile": "gpu"},
        clients=[{"network": network, "profile": "v3cpu"}],
    )
    pip_install(running.index_url, [PROJECT], tmp_path)
    assert _installed_build(tmp_path) == expected


# ---- no fingerprint ------------------------------------------------------------------------


def _installed_files(target: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(target)): path.read_bytes()
        for path in sorted(target.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_no_fingerprint_installs_what_the_upstream_gives_directly(
    served: RunningProxy, variant_upstream: UpstreamServer, tmp_path: Path
) -> None:
    through_proxy, direct = tmp_path / "proxy", tmp_path / "direct"
    pip_install(served.index_url, [PROJECT], through_proxy)
    pip_install(variant_upstream.index_url, [PROJECT], direct)
    assert _installed_build(through_proxy) == PLAIN
    assert _installed_build(direct) == PLAIN
    assert _installed_files(through_proxy) == _installed_files(direct)


# ---- hashes and metadata -------------------------------------------------------------------


def test_require_hashes_with_the_upstream_hash_of_the_expected_variant(
    served: RunningProxy, house: VariantWheelhouse, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        f"{PROJECT}=={VERSION} --hash=sha256:{house.variants['cu128'].sha256}\n"
    )
    target = tmp_path / "target"

    def install(spec: str, into: Path, *, check: bool = True) -> ToolResult:
        index_url = f"{served.url}/hw/{spec}/simple/"
        options = ["--require-hashes", "--no-compile", "--retries", "0", "--target", str(into)]
        args = ["install", *options, "--index-url", index_url, "-r", str(requirements)]
        return run_pip(args, check=check)

    install(GPU_SPEC, target)
    assert _installed_build(target) == "cu128"
    # The same hash does not fit the build another machine gets: pip refuses it.
    refused = install("cpu=x86_64_v2", tmp_path / "other", check=False)
    assert refused.returncode != 0, refused.describe()


def test_pip_reads_the_metadata_file_of_a_renamed_variant(
    served: RunningProxy, house: VariantWheelhouse, tmp_path: Path
) -> None:
    index_url = f"{served.url}/hw/cpu=x86_64_v4,cuda=12.6,sm=8.0/simple/"
    listed = page_files(index_url + f"{PROJECT}/")[LEGACY_WHEEL]
    variant = house.variants["cu126"]
    assert listed.sha256 == variant.sha256
    result: ToolResult = pip_install(index_url, [PROJECT], tmp_path)
    assert _installed_build(tmp_path) == "cu126"
    metadata_path = listed.url.removeprefix(served.url) + ".metadata"
    assert metadata_path.endswith(f"/{LEGACY_WHEEL}.metadata")

    def metadata_served() -> bool:
        return any(
            record.get("path") == metadata_path and record.get("status") == 200
            for record in served.log_records()
        )

    # The access log line may land just after pip has its answer.
    assert wait_until(metadata_served), result.output


# ---- variants.json built from the wheels ---------------------------------------------------

# Each variant wheel is padded past the proxy's first range read (64 KiB at most observed), so
# a whole-file read can be told apart from a range read.
PADDED_VARIANT_BYTES = 200_000


@pytest.fixture(scope="module")
def padded_house(tmp_path_factory: pytest.TempPathFactory) -> VariantWheelhouse:
    return build_variant_wheelhouse(
        tmp_path_factory.mktemp("vpkg-padded"), variant_payload=PADDED_VARIANT_BYTES
    )


def _requested_length(range_header: str | None, size: int) -> int:
    """Bytes a single `Range` asks for; the whole file when there is none."""
    if range_header is None:
        return size
    first, _, last = range_header.removeprefix("bytes=").partition("-")
    if not first:
        return min(int(last), size)
    return (min(int(last), size - 1) if last else size - 1) - int(first) + 1


def _variant_wheel_reads(
    upstream: UpstreamServer, house: VariantWheelhouse
) -> list[tuple[str, int]]:
    """(file name, bytes asked for) of every GET of a variant wheel, in order."""
    wanted = {upstream.file_path(dist.filename): dist for dist in house.variants.values()}
    reads = []
    for method, path, headers in upstream.request_log():
        dist = wanted.get(path)
        if dist is not None and method == "GET":
            ranges = {key.lower(): value for key, value in headers.items()}.get("range")
            reads.append((dist.filename, _requested_length(ranges, dist.size)))
    return reads


def test_variants_json_built_from_wheels_with_range_requests_only(
    make_upstream: UpstreamFactory,
    proxy: ProxyLauncher,
    padded_house: VariantWheelhouse,
    tmp_path: Path,
) -> None:
    house = padded_house
    upstream = publish_variants(
        make_upstream("html", publish=False), house, with_variants_json=False
    )
    running = _start(proxy, upstream, variants={"build_missing_variants_json": True})
    index_url = f"{running.url}/hw/{GPU_SPEC}/simple/"
    shown = page_files(index_url + f"{PROJECT}/")[LEGACY_WHEEL]
    assert shown.sha256 == house.variants["cu128"].sha256

    reads = _variant_wheel_reads(upstream, house)
    assert {name for name, _ in reads} == house.variant_filenames
    size_of = {dist.filename: dist.size for dist in house.variants.values()}
    assert all(asked < size_of[name] for name, asked in reads), reads
    # The wheels' own variant.json files were read; none was downloaded whole.
    assert sum(asked for _, asked in reads) < sum(size_of.values()) / 2, reads

    pip_install(index_url, [PROJECT], tmp_path)
    assert _installed_build(tmp_path) == "cu128"
    whole = [
        name for name, asked in _variant_wheel_reads(upstream, house) if asked == size_of[name]
    ]
    assert whole == [house.variants["cu128"].filename]


def test_without_variants_json_and_no_building_the_plain_wheel_is_installed(
    make_upstream: UpstreamFactory,
    proxy: ProxyLauncher,
    house: VariantWheelhouse,
    tmp_path: Path,
) -> None:
    upstream = publish_variants(
        make_upstream("html", publish=False), house, with_variants_json=False
    )
    running = _start(proxy, upstream)
    pip_install(f"{running.url}/hw/{GPU_SPEC}/simple/", [PROJECT], tmp_path)
    assert _installed_build(tmp_path) == PLAIN
    assert _variant_wheel_reads(upstream, house) == []
