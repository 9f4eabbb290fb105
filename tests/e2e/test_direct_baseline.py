"""Going direct: real pip and uv against the local upstream, no proxy in between.

This is the baseline the proxy tests compare with, and the proof that the harness (built
files, both simple-API modes, isolated installers) behaves like a real index does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .catalogue import EXPECTED, REQUIREMENTS, YANKED_REASON, Wheelhouse, publish_public
from .clients import (
    ToolResult,
    build_marker,
    installed_versions,
    pip_download,
    pip_install,
    uv_install,
)
from .upstream_server import Mode, UpstreamServer

pytestmark = pytest.mark.e2e


@pytest.fixture(
    scope="module",
    params=[("html", False), ("json", False), ("json", True)],
    ids=["html", "json-relative", "json-absolute"],
)
def direct_upstream(
    request: pytest.FixtureRequest, wheelhouse: Wheelhouse
) -> Iterator[UpstreamServer]:
    mode: Mode
    mode, absolute_urls = request.param
    server = UpstreamServer(mode, absolute_urls=absolute_urls).start()
    publish_public(server, wheelhouse)
    yield server
    server.close()


@pytest.fixture(scope="module")
def pip_direct(
    direct_upstream: UpstreamServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, ToolResult]:
    target = tmp_path_factory.mktemp("pip-direct")
    return target, pip_install(direct_upstream.index_url, REQUIREMENTS, target)


def test_pip_install_direct(pip_direct: tuple[Path, ToolResult]) -> None:
    target, _ = pip_direct
    assert installed_versions(target) == EXPECTED
    assert build_marker(target, "demo-app") == "plain"
    assert build_marker(target, "demo-src") == "sdist"


def test_pip_reads_metadata_files_direct(
    pip_direct: tuple[Path, ToolResult], direct_upstream: UpstreamServer, wheelhouse: Wheelhouse
) -> None:
    lib = wheelhouse["demo-lib-1.0"]
    assert direct_upstream.count(direct_upstream.metadata_path(lib.filename)) >= 1


def test_pip_installs_yanked_version_only_when_pinned_direct(
    direct_upstream: UpstreamServer, tmp_path: Path
) -> None:
    result = pip_install(direct_upstream.index_url, ["yankee==2.0"], tmp_path)
    assert installed_versions(tmp_path) == {"yankee": "2.0"}
    assert YANKED_REASON in result.output


def test_pip_download_direct(
    direct_upstream: UpstreamServer, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    pip_download(direct_upstream.index_url, ["demo-app", "demo-src"], tmp_path)
    expected = [wheelhouse[key] for key in ("demo-app-1.0", "demo-lib-1.0", "demo-src-1.0")]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        dist.filename: dist.data for dist in expected
    }


def test_uv_install_direct(direct_upstream: UpstreamServer, tmp_path: Path) -> None:
    uv_install(direct_upstream.index_url, REQUIREMENTS, tmp_path)
    assert installed_versions(tmp_path) == EXPECTED
    assert build_marker(tmp_path, "demo-src") == "sdist"
