"""Fixtures for the e2e suite: one wheelhouse, upstream indexes, proxy processes, metrics.

The wheelhouse is built once per session. Upstreams are started per test (`make_upstream`,
for tests that flip knobs) or once per module and per mode (`upstream`, parametrized over an
HTML-only and a JSON-only index, for tests that only read). Proxies are started from config
dicts by the `proxy` (per test) and `module_proxy` (per module) launchers and always stopped.
Metric names live only here (`METRIC_NAMES`), read through `read_metric`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from .catalogue import Wheelhouse, build_wheelhouse, publish_public
from .clients import http_get
from .cluster_services import ClusterServices, ServicesUnavailable
from .cluster_services import cluster_services as start_cluster_services
from .cluster_services import unavailable_reason as cluster_unavailable_reason
from .mirror_support import mirrored, partial_cache  # noqa: F401 - fixtures of the mirror tests
from .proxy_process import MetricReader, ProxyLauncher, RunningProxy
from .upstream_server import Mode, UpstreamFactory, UpstreamServer

# Logical metric -> the Prometheus name the proxy exports (adjust here only).
METRIC_NAMES: dict[str, str] = {
    "upstream_requests": "variant_proxy_upstream_requests_total",
    "cache_hits": "variant_proxy_cache_hits_total",
    "evictions": "variant_proxy_evictions_total",
}


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture
def make_upstream(wheelhouse: Wheelhouse) -> Iterator[UpstreamFactory]:
    """`make_upstream(mode="html", absolute_urls=False, publish=True)`: a started upstream,
    holding the public wheelhouse unless `publish=False`; closed after the test."""
    started: list[UpstreamServer] = []

    def make(
        mode: Mode = "html", *, absolute_urls: bool = False, publish: bool = True
    ) -> UpstreamServer:
        server = UpstreamServer(mode, absolute_urls=absolute_urls).start()
        started.append(server)
        return publish_public(server, wheelhouse) if publish else server

    yield make
    for server in started:
        server.close()


@pytest.fixture(scope="module", params=["html", "json"])
def upstream(request: pytest.FixtureRequest, wheelhouse: Wheelhouse) -> Iterator[UpstreamServer]:
    """A read-only public upstream per module: HTML-only (relative hrefs) or JSON-only
    (absolute URLs). Tests using it must not flip its knobs."""
    mode: Mode = request.param
    server = UpstreamServer(mode, absolute_urls=mode == "json").start()
    publish_public(server, wheelhouse)
    yield server
    server.close()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ProxyLauncher]:
    """Launcher for proxies that live for one test: `proxy.start(config)`."""
    launcher = ProxyLauncher(tmp_path / "proxies")
    yield launcher
    launcher.close()


@pytest.fixture(scope="module")
def module_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyLauncher]:
    """Launcher for proxies shared by the tests of one module."""
    launcher = ProxyLauncher(tmp_path_factory.mktemp("proxies"))
    yield launcher
    launcher.close()


def metric_value(exposition: str, metric: str) -> float:
    """Sum of every sample of `metric` (any labels) in Prometheus text exposition."""
    name = METRIC_NAMES[metric]
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})?\s+(\S+)")
    total = 0.0
    for line in exposition.splitlines():
        match = pattern.match(line)
        if match:
            total += float(match.group(1))
    return total


@pytest.fixture
def metric_names() -> Mapping[str, str]:
    """Logical metric -> exported Prometheus name, as the proxy is expected to export it."""
    return dict(METRIC_NAMES)


@pytest.fixture
def read_metric() -> MetricReader:
    """`read_metric(proxy, "cache_hits")`: the current value of a logical metric."""

    def read(running: RunningProxy, metric: str) -> float:
        response = http_get(f"{running.url}/metrics")
        assert response.status == 200, response.text
        return metric_value(response.text, metric)

    return read


@pytest.fixture(scope="session")
def cluster_services() -> Iterator[ClusterServices]:
    """One S3 server (Ceph RGW) and one Redis for the whole session (see cluster_services)."""
    reason = cluster_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    try:
        with start_cluster_services() as services:
            yield services
    except ServicesUnavailable as exc:
        pytest.skip(str(exc))
