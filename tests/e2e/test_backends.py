"""Per-build indexes (`[[backends]]`) as variants: real pip, through the proxy, gets the
build its fingerprint calls for from simulated PyTorch-style indexes on loopback (see
`backend_indexes` for which build has which release).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .backend_indexes import BuildIndexes, serve_build_indexes
from .clients import (
    build_marker,
    http_get,
    installed_versions,
    pip_download,
    read_page,
    run_pip,
    uv_install,
)
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config, run_proxy_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildIndexes]:
    with serve_build_indexes(tmp_path_factory.mktemp("builds")) as served:
        yield served


@pytest.fixture(scope="module")
def served(indexes: BuildIndexes, module_proxy: ProxyLauncher) -> RunningProxy:
    config = proxy_config(
        module_proxy.new_cache_dir(), [indexes.upstream], backends=indexes.backends_config()
    )
    return module_proxy.start(config)


def _resolve(index_url: str, requirements: list[str], tmp_path: Path) -> dict[str, str]:
    """What real pip would install (project -> version), resolved from PEP 658 metadata."""
    report = tmp_path / "report.json"
    run_pip(
        [
            "install",
            "--dry-run",
            "--ignore-installed",
            "--retries",
            "0",
            "--index-url",
            index_url,
            "--report",
            str(report),
            *requirements,
        ]
    )
    document: dict[str, Any] = json.loads(report.read_text())
    return {item["metadata"]["name"]: item["metadata"]["version"] for item in document["install"]}


def _hw(served: RunningProxy, spec: str) -> str:
    return f"{served.url}/hw/{spec}/simple/"


@pytest.mark.parametrize(
    ("spec", "build"),
    [
        ("cuda=12.8,sm=8.6", "cu128"),  # newest build the driver supports with sm_86
        ("cuda=12.8,sm=6.1", "cu126"),  # cu128 lacks sm_61 (the uv#14742 case)
        ("cuda=12.6,sm=9.0", "cu126"),  # driver too old for cu128
        ("cuda=13.0,sm=9.0", "cu128"),  # cu130 lacks torchvision 0.22.0: not a whole pair
        ("cpu=x86_64_v3", "cpu"),  # a known fingerprint without a GPU
        ("none", "cpu"),
    ],
)
def test_pip_gets_a_consistent_torch_and_torchvision_from_the_build_that_fits(
    served: RunningProxy, tmp_path: Path, spec: str, build: str
) -> None:
    resolved = _resolve(_hw(served, spec), ["torch", "torchvision"], tmp_path)
    assert resolved == {"torch": f"2.7.0+{build}", "torchvision": f"0.22.0+{build}"}


def test_torch_alone_comes_from_the_build_its_pair_would(
    served: RunningProxy, tmp_path: Path
) -> None:
    # cu130 has torch 2.7.0 but no torchvision 0.22.0: torch's page shows cu128 too, so a
    # later `pip install torchvision` finds the torch it pins.
    resolved = _resolve(_hw(served, "cuda=13.0,sm=9.0"), ["torch"], tmp_path)
    assert resolved == {"torch": "2.7.0+cu128"}


def test_a_pinned_version_some_builds_lack_comes_from_the_best_build_that_has_it(
    served: RunningProxy, tmp_path: Path
) -> None:
    resolved = _resolve(_hw(served, "cuda=12.8,sm=8.6"), ["torch==2.6.0", "torchvision"], tmp_path)
    assert resolved == {"torch": "2.6.0+cu126", "torchvision": "0.21.0+cu126"}


def test_no_fingerprint_gets_what_the_upstreams_alone_give(
    served: RunningProxy, tmp_path: Path
) -> None:
    resolved = _resolve(served.index_url, ["torch", "torchvision"], tmp_path)
    assert resolved == {"torch": "2.7.0", "torchvision": "0.22.0"}


def test_the_downloaded_file_is_the_builds_own_under_its_real_name(
    served: RunningProxy, indexes: BuildIndexes, tmp_path: Path
) -> None:
    pip_download(_hw(served, "cuda=12.8,sm=8.6"), ["--no-deps", "torch"], tmp_path)
    wheel = indexes.dists["cu128/torch-2.7.0"]
    assert [p.name for p in tmp_path.glob("*.whl")] == [wheel.filename]
    assert (tmp_path / wheel.filename).read_bytes() == wheel.data


def test_a_legacy_page_shows_one_build_per_version(served: RunningProxy) -> None:
    names = {f["filename"] for f in read_page(f"{_hw(served, 'cuda=12.8,sm=8.6')}torch/")["files"]}
    assert names == {
        "torch-2.6.0+cu126-py3-none-any.whl",
        "torch-2.7.0+cu128-py3-none-any.whl",
    }


def test_backend_pages_serve_one_index_through_the_cache(
    served: RunningProxy, indexes: BuildIndexes, tmp_path: Path
) -> None:
    url = f"{served.url}/backend/cu126/simple/torch/"
    for accept in ("text/html", "application/vnd.pypi.simple.v1+json"):
        names = {f["filename"] for f in read_page(url, accept=accept)["files"]}
        assert names == {
            "torch-2.6.0+cu126-py3-none-any.whl",
            "torch-2.7.0+cu126-py3-none-any.whl",
        }
    pip_download(f"{served.url}/backend/cu126/simple/", ["--no-deps", "torch==2.7.0"], tmp_path)
    assert (tmp_path / "torch-2.7.0+cu126-py3-none-any.whl").exists()
    listing = http_get(f"{served.url}/backend/cu126/simple/", headers={"Accept": "text/html"})
    assert listing.status == 200 and 'href="torch/"' in listing.text
    before = indexes.builds["cu126"].count("/simple/torch/")
    assert http_get(url).status == 200
    assert indexes.builds["cu126"].count("/simple/torch/") == before  # from the cache
    assert http_get(f"{served.url}/backend/nosuch/simple/torch/").status == 404


def test_uv_gets_the_same_builds(served: RunningProxy, tmp_path: Path) -> None:
    uv_install(_hw(served, "cuda=12.8,sm=8.6"), ["torch", "torchvision"], tmp_path)
    assert installed_versions(tmp_path) == {"torch": "2.7.0+cu128", "torchvision": "0.22.0+cu128"}


def test_an_installed_build_is_the_one_chosen(served: RunningProxy, tmp_path: Path) -> None:
    run_pip(
        [
            "install",
            "--index-url",
            _hw(served, "cuda=12.8,sm=6.1"),
            "--target",
            str(tmp_path),
            "--no-compile",
            "torchvision",
        ]
    )
    assert build_marker(tmp_path, "torch") == "cu126"
    assert build_marker(tmp_path, "torchvision") == "cu126"


def test_explain_says_which_build_each_version_gets_and_why(
    served: RunningProxy, indexes: BuildIndexes
) -> None:
    result = run_proxy_cli(
        ["explain", "torch", "--hw", "cuda=13.0,sm=9.0", "--config", str(served.config_path)]
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "version 2.7.0: cu128" in text
    assert "cu130: lacks torchvision 0.22.0" in text
    assert "version 2.6.0: cu126" in text
    assert "cu128: has no torch 2.6.0" in text
