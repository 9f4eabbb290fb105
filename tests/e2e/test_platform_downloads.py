"""Real pip, one machine at a time: `pip download --platform ... --python-version 3.12
--only-binary :all: --no-deps` through the proxy's legacy page gets the file a PEP 825 installer
with the same fingerprint picks from the upstream page (CONTRACT.md "What a legacy client is
shown"), for glibc 2.17, glibc 2.28, musl, macOS 11, macOS 14 and Windows.

pip's `--platform` accepts only the tags it is given (`manylinux_2_28_x86_64` alone excludes
every lower glibc level), so each run passes the machine's whole chain, most preferred first,
as `packaging.tags` lists it on that machine.

`mpkg` 1.0, for a client with `cpu=x86_64_v3` (supports v3, v2, v1; v3 preferred):

- glibc 2.17: the plain manylinux2014 wheel (the v3 variant needs glibc 2.28);
- glibc 2.28: the v3 variant (manylinux_2_28);
- musl 1.2: the v2 variant (the best label has no musl wheel);
- macOS 11 arm64: the v2 variant (the v3 one needs macOS 14);
- macOS 14 arm64: the v3 variant (macosx_14_0);
- Windows: the plain wheel (the v3 Windows variant is yanked).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.tags import mac_platforms

from .builders import BuiltDist, build_wheel
from .clients import run_pip
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config
from .upstream_server import UpstreamServer
from .variant_support import variants_json_document

pytestmark = pytest.mark.e2e

PROJECT = "mpkg"
VERSION = "1.0"
CPP = "cp312-cp312"
SPEC = "cpu=x86_64_v3"

PLAIN = {
    "linux": f"{CPP}-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "musl": f"{CPP}-musllinux_1_2_x86_64",
    "mac": f"{CPP}-macosx_11_0_arm64",
    "windows": f"{CPP}-win_amd64",
}
VARIANTS = {
    ("x86_64_v3", "linux"): f"{CPP}-manylinux_2_28_x86_64",
    ("x86_64_v3", "mac"): f"{CPP}-macosx_14_0_arm64",
    ("x86_64_v3", "windows"): f"{CPP}-win_amd64",
    ("x86_64_v2", "musl"): f"{CPP}-musllinux_1_2_x86_64",
    ("x86_64_v2", "mac"): f"{CPP}-macosx_11_0_arm64",
}
YANKED = {("x86_64_v3", "windows")}


def glibc_chain(level: int) -> list[str]:
    aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    chain: list[str] = []
    for minor in range(level, 4, -1):
        chain.append(f"manylinux_2_{minor}_x86_64")
        if minor in aliases:
            chain.append(f"{aliases[minor]}_x86_64")
    return [*chain, "linux_x86_64"]


MACHINES = {
    "glibc-2.17": (glibc_chain(17), ("plain", "linux")),
    "glibc-2.28": (glibc_chain(28), ("x86_64_v3", "linux")),
    "musl-1.2": ([f"musllinux_1_{m}_x86_64" for m in (2, 1, 0)], ("x86_64_v2", "musl")),
    "macos-11": (list(mac_platforms((11, 0), "arm64")), ("x86_64_v2", "mac")),
    "macos-14": (list(mac_platforms((14, 0), "arm64")), ("x86_64_v3", "mac")),
    "windows": (["win_amd64"], ("plain", "windows")),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], BuiltDist]:
    root = tmp_path_factory.mktemp("mpkg")
    built = {
        ("plain", system): build_wheel(root, PROJECT, VERSION, tags=tags, build_marker="plain")
        for system, tags in PLAIN.items()
    }
    for (label, system), tags in VARIANTS.items():
        level = label.rsplit("_", 1)[1]
        built[(label, system)] = build_wheel(
            root,
            PROJECT,
            VERSION,
            tags=tags,
            variant_label=label,
            variant_properties=[f"x86_64 :: level :: {level}"],
            namespace_priorities=("x86_64",),
        )
    return built


@pytest.fixture(scope="module")
def served(
    files: dict[tuple[str, str], BuiltDist],
    module_proxy: ProxyLauncher,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningProxy]:
    upstream = UpstreamServer("html").start()
    for key, dist in files.items():
        upstream.add_dist(dist, yanked="broken build" if key in YANKED else False)
    variant_wheels = [dist for (label, _), dist in files.items() if label != "plain"]
    document = variants_json_document(variant_wheels)
    json_path = tmp_path_factory.mktemp("mpkg-json") / f"{PROJECT}-{VERSION}-variants.json"
    json_path.write_text(json.dumps(document))
    upstream.add_dist(BuiltDist(PROJECT, VERSION, json_path, "other"))
    yield module_proxy.start(proxy_config(module_proxy.new_cache_dir(), [upstream]))
    upstream.close()


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_pip_download_for_a_machine_gets_the_file_pep825_picks(
    served: RunningProxy,
    files: dict[tuple[str, str], BuiltDist],
    tmp_path: Path,
    machine: str,
) -> None:
    platforms, expected = MACHINES[machine]
    platform_args = [arg for tag in platforms for arg in ("--platform", tag)]
    run_pip(
        [
            "download",
            "--retries",
            "0",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            "--abi",
            "cp312",
            *platform_args,
            "--index-url",
            f"{served.url}/hw/{SPEC}/simple/",
            "--dest",
            str(tmp_path),
            PROJECT,
        ]
    )
    (downloaded,) = tmp_path.iterdir()
    wanted = files[expected]
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == wanted.sha256, (
        f"{machine}: got {downloaded.name}, a PEP 825 installer picks {wanted.filename}"
    )
    assert downloaded.name == wanted.filename.replace(f"-{expected[0]}.whl", ".whl")
