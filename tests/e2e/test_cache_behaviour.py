"""What the proxy's cache does under load and failure: single-flight downloads, abandoned
clients, corrupt upstream files, upstream outages, restarts, eviction and invalidation.

Every test gets its own upstream (it flips knobs) and its own proxy and cache folder.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .catalogue import Wheelhouse
from .clients import (
    HttpResponse,
    fetch_outcome,
    file_urls,
    http_get,
    http_request,
    installed_versions,
    pip_install,
    read_then_disconnect,
    wait_until,
)
from .proxy_process import MetricReader, ProxyLauncher, RunningProxy, proxy_config, run_proxy_cli
from .upstream_server import Throttle, UpstreamFactory, UpstreamServer

pytestmark = pytest.mark.e2e

CONCURRENT_CLIENTS = 20
# About 1 s to stream a 2 MiB file, so every client arrives while the download is running.
SLOW_UPSTREAM = Throttle(chunk_size=64 * 1024, delay=0.03)
SHORT_TTL_S = 1


def _serve(
    proxy: ProxyLauncher,
    upstream: UpstreamServer,
    *,
    cache: Mapping[str, Any] | None = None,
    upstream_settings: Mapping[str, Any] | None = None,
) -> RunningProxy:
    config = proxy_config(
        proxy.new_cache_dir(), [upstream], cache=cache, upstream_settings=upstream_settings
    )
    return proxy.start(config)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_concurrent_clients_share_one_upstream_download(
    make_upstream: UpstreamFactory, proxy: ProxyLauncher, wheelhouse: Wheelhouse
) -> None:
    upstream = make_upstream("json")
    running = _serve(proxy, upstream)
    big = wheelhouse["big-1.0"]
    url = file_urls(running.page_url("big"))[big.filename]
    upstream.throttle = SLOW_UPSTREAM
    start_together = threading.Barrier(CONCURRENT_CLIENTS)

    def fetch(_: int) -> HttpResponse:
        start_together.wait()
        return http_get(url, timeout=60)

    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        responses = list(pool.map(fetch, range(CONCURRENT_CLIENTS)))

    assert [r.status for r in responses] == [200] * CONCURRENT_CLIENTS
    assert {_sha256(r.body) for r in responses} == {big.sha256}
    assert upstream.count(upstream.file_path(big.filename)) == 1


def test_client_disconnect_mid_file_download_still_completes(
    make_upstream: UpstreamFactory, proxy: ProxyLauncher, wheelhouse: Wheelhouse
) -> None:
    upstream = make_upstream("html")
    running = _serve(proxy, upstream)
    big = wheelhouse["big-2.0"]
    path = upstream.file_path(big.filename)
    url = file_urls(running.page_url("big"))[big.filename]
    upstream.throttle = SLOW_UPSTREAM

    received = read_then_disconnect(url, 256 * 1024)
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    assert len(received) < big.size  # the client left before the end

    assert upstream.wait_completed(path, 1, timeout=60), "the proxy abandoned the download"
    upstream.throttle = None
    again = http_get(url)
    assert again.status == 200
    assert again.body == big.data
    assert upstream.count(path) == 1


def test_hash_mismatch_fails_and_caches_nothing(
    make_upstream: UpstreamFactory, proxy: ProxyLauncher, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    upstream = make_upstream("json")
    running = _serve(proxy, upstream)
    fragile = wheelhouse["fragile-1.0"]
    path = upstream.file_path(fragile.filename)
    url = file_urls(running.page_url("fragile"))[fragile.filename]
    damaged = upstream.corrupt(fragile.filename)

    outcome = fetch_outcome(url)
    got_damaged_bytes = (
        isinstance(outcome, HttpResponse) and outcome.status == 200 and outcome.body == damaged
    )
    assert not got_damaged_bytes, "the proxy handed out bytes that do not match the page hash"
    failed = pip_install(running.index_url, ["fragile"], tmp_path / "corrupt", check=False)
    assert failed.returncode != 0
    assert installed_versions(tmp_path / "corrupt") == {}

    upstream.repair(fragile.filename)
    before = upstream.count(path)
    pip_install(running.index_url, ["fragile"], tmp_path / "repaired")
    assert installed_versions(tmp_path / "repaired") == {"fragile": "1.0"}
    assert upstream.count(path) == before + 1  # nothing was cached: it went upstream again


@pytest.mark.parametrize("outage", ["503", "refused"])
def test_upstream_down_serves_cached_project_stale(
    make_upstream: UpstreamFactory,
    proxy: ProxyLauncher,
    wheelhouse: Wheelhouse,
    tmp_path: Path,
    outage: str,
) -> None:
    upstream = make_upstream("html")
    running = _serve(
        proxy,
        upstream,
        cache={"page_ttl": SHORT_TTL_S},
        upstream_settings={"ttl": SHORT_TTL_S},
    )
    pip_install(running.index_url, ["demo-lib"], tmp_path / "warm")
    if outage == "503":
        upstream.down = True
    else:
        upstream.stop()
    time.sleep(SHORT_TTL_S + 0.5)  # the cached page is now past its TTL

    page = http_get(running.page_url("demo-lib"))
    assert page.status == 200
    assert (page.header("Warning") or "").startswith("110"), dict(page.headers)
    pip_install(running.index_url, ["demo-lib"], tmp_path / "stale")
    assert installed_versions(tmp_path / "stale") == {"demo-lib": "1.0"}

    uncached = http_get(running.page_url("cold"))
    assert uncached.status in (502, 504), uncached.text
    failed = pip_install(running.index_url, ["cold"], tmp_path / "cold", check=False)
    assert failed.returncode != 0


def test_restart_with_warm_cache_installs_while_upstream_down(
    make_upstream: UpstreamFactory, proxy: ProxyLauncher, tmp_path: Path
) -> None:
    upstream = make_upstream("json", absolute_urls=True)
    running = _serve(proxy, upstream)
    pip_install(running.index_url, ["demo-app", "demo-src"], tmp_path / "warm")
    running.stop()
    upstream.stop()
    running.start()
    pip_install(running.index_url, ["demo-app", "demo-src"], tmp_path / "restarted")
    assert installed_versions(tmp_path / "restarted") == {
        "demo-app": "1.0",
        "demo-lib": "1.0",
        "demo-src": "1.0",
    }


def test_eviction_refetches_the_least_recently_used_file(
    make_upstream: UpstreamFactory,
    proxy: ProxyLauncher,
    wheelhouse: Wheelhouse,
    read_metric: MetricReader,
) -> None:
    upstream = make_upstream("html")
    bulky = [wheelhouse[f"bulky-{version}"] for version in ("1.0", "2.0", "3.0")]
    # Room for two of the three files, not for all three.
    max_size = 2 * bulky[0].size + bulky[0].size // 2
    running = _serve(proxy, upstream, cache={"max_size": max_size})
    urls = file_urls(running.page_url("bulky"))
    paths = [upstream.file_path(dist.filename) for dist in bulky]

    for dist in bulky:
        assert http_get(urls[dist.filename]).body == dist.data
    assert [upstream.count(path) for path in paths] == [1, 1, 1]

    # A client can have every byte before the proxy has stored the file and evicted what no
    # longer fits, so wait for the eviction before looking at what is left.
    assert wait_until(lambda: read_metric(running, "evictions") >= 1), "nothing was evicted"
    newest, oldest = bulky[2], bulky[0]
    assert http_get(urls[newest.filename]).body == newest.data
    assert upstream.count(paths[2]) == 1  # the newest stayed
    assert http_get(urls[oldest.filename]).body == oldest.data
    assert upstream.count(paths[0]) == 2  # the oldest was evicted and is fetched again


def test_invalidation_makes_next_request_go_upstream(
    make_upstream: UpstreamFactory, proxy: ProxyLauncher
) -> None:
    upstream = make_upstream("json")
    running = _serve(proxy, upstream, cache={"page_ttl": 3600}, upstream_settings={"ttl": 3600})
    page_url, upstream_page = running.page_url("demo-lib"), upstream.page_path("demo-lib")

    assert http_get(page_url).status == 200
    fetched = upstream.count(upstream_page)
    assert fetched >= 1
    assert http_get(page_url).status == 200
    assert upstream.count(upstream_page) == fetched  # fresh in the cache

    admin = http_request(f"{running.url}/admin/invalidate/demo-lib", method="POST", data=b"")
    assert 200 <= admin.status < 300, admin.text
    assert http_get(page_url).status == 200
    assert upstream.count(upstream_page) == fetched + 1

    cli = run_proxy_cli(["invalidate", "demo-lib", "--proxy", running.url])
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert http_get(page_url).status == 200
    assert upstream.count(upstream_page) == fetched + 2
