"""Variant labels `.` and `..` are valid PEP 825 labels; no URL the proxy makes may hold a path
segment a client collapses. The native view's variants.json href names the listed labels, so
a version whose only compatible variant is `.` or `..` is the case that used to 404."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .builders import BuiltDist, build_wheel
from .clients import http_get
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config
from .upstream_server import UpstreamServer
from .variant_support import page_files, sha256, variants_json_document

pytestmark = pytest.mark.e2e

PROJECT = "dpkg"
VERSION = "1.0"
LEVELS = {".": "v2", "..": "v4"}  # label -> the x86_64 level it needs


@pytest.fixture(scope="module")
def served(
    module_proxy: ProxyLauncher, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    root = tmp_path_factory.mktemp("dpkg")
    wheels = [
        build_wheel(
            root,
            PROJECT,
            VERSION,
            variant_label=label,
            variant_properties=[f"x86_64 :: level :: {level}"],
            namespace_priorities=("x86_64",),
        )
        for label, level in LEVELS.items()
    ]
    json_path = Path(root) / f"{PROJECT}-{VERSION}-variants.json"
    json_path.write_text(json.dumps(variants_json_document(wheels)))
    upstream = UpstreamServer("html").start()
    for dist in (*wheels, BuiltDist(PROJECT, VERSION, json_path, "other")):
        upstream.add_dist(dist)
    yield module_proxy.start(proxy_config(module_proxy.new_cache_dir(), [upstream]))
    upstream.close()


@pytest.mark.parametrize(
    ("properties", "labels"),
    [
        ("x86_64 :: level :: v2", {"."}),
        ("x86_64 :: level :: v4", {".."}),
        ("x86_64 :: level :: v4, x86_64 :: level :: v2", {".", ".."}),
    ],
)
def test_native_variants_json_of_dot_labels_is_reachable(
    served: RunningProxy, properties: str, labels: set[str]
) -> None:
    files = page_files(
        f"{served.url}/native/simple/{PROJECT}/", headers={"Variant-Properties": properties}
    )
    listed = files[f"{PROJECT}-{VERSION}-variants.json"]
    for href in [f.url for f in files.values()]:
        segments = href.split("?")[0].split("/")
        assert "." not in segments and ".." not in segments, href
    response = http_get(listed.url)
    assert response.status == 200, listed.url
    assert sha256(response.body) == listed.sha256
    assert set(json.loads(response.body)["variants"]) == labels
    wheels = {name for name in files if name.endswith(".whl")}
    assert wheels == {f"{PROJECT}-{VERSION}-py3-none-any-{label}.whl" for label in labels}
    for name in wheels:
        assert http_get(files[name].url).status == 200
