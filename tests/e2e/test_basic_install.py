"""The proxy in front of an HTML-only and a JSON-only upstream: pip and uv install through it.

One proxy per upstream mode serves the whole module; the installs that several tests look at
run once per mode (module fixtures), each test asserting one behaviour of what happened.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from .catalogue import EXPECTED, PAGE_ONLY_REQUIRES_PYTHON, REQUIREMENTS, YANKED_REASON, Wheelhouse
from .clients import (
    JSON_ACCEPT,
    ToolResult,
    build_marker,
    file_urls,
    http_get,
    installed_versions,
    pip_download,
    pip_install,
    read_page,
    uv_install,
    wait_until,
)
from .proxy_process import MetricReader, ProxyLauncher, RunningProxy, proxy_config
from .upstream_server import UpstreamServer

pytestmark = pytest.mark.e2e

HTML_V1 = "application/vnd.pypi.simple.v1+html"


@pytest.fixture(scope="module")
def served(upstream: UpstreamServer, module_proxy: ProxyLauncher) -> Iterator[RunningProxy]:
    running = module_proxy.start(proxy_config(module_proxy.new_cache_dir(), [upstream]))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def pip_through_proxy(
    served: RunningProxy, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, ToolResult]:
    target = tmp_path_factory.mktemp("pip-proxy")
    return target, pip_install(served.index_url, REQUIREMENTS, target)


def _served_file_paths(served: RunningProxy) -> list[str]:
    """Paths of the files the proxy served so far (its access log; pip's own output varies
    between pip versions, the log does not)."""
    return [
        record["path"]
        for record in served.log_records()
        if record.get("route") == "file" and record.get("status") == 200
    ]


def _entries(page_url: str) -> dict[str, dict[str, object]]:
    return {entry["filename"]: entry for entry in read_page(page_url)["files"]}


def test_pip_install_through_proxy(
    pip_through_proxy: tuple[Path, ToolResult], served: RunningProxy
) -> None:
    target, _ = pip_through_proxy
    assert installed_versions(target) == EXPECTED
    assert build_marker(target, "demo-app") == "plain"
    assert build_marker(target, "demo-src") == "sdist"
    served_names = {path.rsplit("/", 1)[-1] for path in _served_file_paths(served)}
    # Every byte came through the proxy: it served each installed file, and no link on its
    # pages points at the upstream.
    for project, version in EXPECTED.items():
        entries = _entries(served.page_url(project))
        assert all(str(e["url"]).startswith(served.url + "/") for e in entries.values())
        assert any(
            name.startswith(f"{project.replace('-', '_')}-{version}") for name in served_names
        ), (project, served_names)


def test_pip_uses_metadata_files_through_proxy(
    pip_through_proxy: tuple[Path, ToolResult],
    served: RunningProxy,
    upstream: UpstreamServer,
    wheelhouse: Wheelhouse,
) -> None:
    lib = wheelhouse["demo-lib-1.0"]
    # pip itself asked the proxy for the metadata file (checked before this test asks).
    assert any(path.endswith(f"/{lib.filename}.metadata") for path in _served_file_paths(served))
    assert upstream.count(upstream.metadata_path(lib.filename)) >= 1
    entry = _entries(served.page_url("demo-lib"))[lib.filename]
    assert entry["core-metadata"] == {"sha256": hashlib.sha256(lib.metadata).hexdigest()}
    metadata_url = f"{entry['url']}.metadata"
    assert http_get(metadata_url).body == lib.metadata


def test_yanked_file_skipped_unless_pinned(
    pip_through_proxy: tuple[Path, ToolResult],
    served: RunningProxy,
    wheelhouse: Wheelhouse,
    tmp_path: Path,
) -> None:
    target, _ = pip_through_proxy
    assert installed_versions(target)["yankee"] == "1.0"
    yanked = wheelhouse["yankee-2.0"]
    assert _entries(served.page_url("yankee"))[yanked.filename]["yanked"] == YANKED_REASON
    pinned = pip_install(served.index_url, ["yankee==2.0"], tmp_path)
    assert installed_versions(tmp_path) == {"yankee": "2.0"}
    assert YANKED_REASON in pinned.output


def test_requires_python_excludes_file(
    pip_through_proxy: tuple[Path, ToolResult], served: RunningProxy, wheelhouse: Wheelhouse
) -> None:
    target, _ = pip_through_proxy
    assert installed_versions(target)["pyreq"] == "1.0"
    excluded = wheelhouse["pyreq-2.0"]
    entry = _entries(served.page_url("pyreq"))[excluded.filename]
    assert entry["requires-python"] == PAGE_ONLY_REQUIRES_PYTHON
    assert not any(excluded.filename in path for path in _served_file_paths(served))


def test_pip_download_through_proxy(
    served: RunningProxy, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    pip_download(served.index_url, ["demo-app", "demo-src"], tmp_path)
    expected = [wheelhouse[key] for key in ("demo-app-1.0", "demo-lib-1.0", "demo-src-1.0")]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        dist.filename: dist.data for dist in expected
    }


def test_uv_install_through_proxy(served: RunningProxy, tmp_path: Path) -> None:
    uv_install(served.index_url, REQUIREMENTS, tmp_path)
    assert installed_versions(tmp_path) == EXPECTED
    assert build_marker(tmp_path, "demo-src") == "sdist"


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (JSON_ACCEPT, JSON_ACCEPT),
        (HTML_V1, HTML_V1),
        ("text/html", "text/html"),
        (f"{JSON_ACCEPT};q=0.2, {HTML_V1};q=0.9", HTML_V1),
        (f"text/html;q=0.5, {JSON_ACCEPT}", JSON_ACCEPT),
    ],
    ids=["json", "html-v1", "text-html", "q-prefers-html", "q-prefers-json"],
)
def test_page_format_follows_accept(
    served: RunningProxy, wheelhouse: Wheelhouse, accept: str, content_type: str
) -> None:
    lib = wheelhouse["demo-lib-1.0"]
    response = http_get(served.page_url("demo-lib"), headers={"Accept": accept})
    assert response.status == 200
    assert (response.header("Content-Type") or "").split(";")[0].strip() == content_type
    assert "accept" in (response.header("Vary") or "").lower()
    if content_type == JSON_ACCEPT:
        document = response.json()
        assert document["name"] == "demo-lib"
        assert lib.filename in {entry["filename"] for entry in document["files"]}
    else:
        assert f">{lib.filename}</a>" in response.text


def test_root_index_in_both_formats(served: RunningProxy) -> None:
    as_json = http_get(served.index_url, headers={"Accept": JSON_ACCEPT})
    assert as_json.status == 200
    assert {"demo-app", "yankee"} <= {project["name"] for project in as_json.json()["projects"]}
    as_html = http_get(served.index_url, headers={"Accept": "text/html"})
    assert as_html.status == 200
    assert ">demo-app</a>" in as_html.text


def test_non_normalised_name_redirects(served: RunningProxy, wheelhouse: Wheelhouse) -> None:
    redirect = http_get(served.page_url("My_Pkg"))
    assert redirect.status in (301, 302, 307, 308)
    assert (redirect.header("Location") or "").endswith("/simple/my-pkg/")
    assert wheelhouse["my-pkg-1.0"].filename in file_urls(served.page_url("My_Pkg"))


def test_health(served: RunningProxy) -> None:
    response = http_get(f"{served.url}/health")
    assert response.status == 200
    assert isinstance(response.json(), dict)


def test_metrics_count_upstream_requests_and_cache_hits(
    served: RunningProxy,
    wheelhouse: Wheelhouse,
    read_metric: MetricReader,
    metric_names: Mapping[str, str],
) -> None:
    exposition = http_get(f"{served.url}/metrics")
    assert exposition.status == 200
    assert (exposition.header("Content-Type") or "").startswith("text/plain")
    for name in metric_names.values():
        assert name in exposition.text

    upstream_before = read_metric(served, "upstream_requests")
    wheel = wheelhouse["cold-1.0"]
    url = file_urls(served.page_url("cold"))[wheel.filename]  # never requested before
    assert read_metric(served, "upstream_requests") > upstream_before

    assert http_get(url).body == wheel.data

    def served_as_hit() -> bool:
        hits_before = read_metric(served, "cache_hits")
        assert http_get(url).body == wheel.data
        return read_metric(served, "cache_hits") > hits_before

    # The first answer may end before the file is in the store; later ones are hits.
    assert wait_until(served_as_hit)
