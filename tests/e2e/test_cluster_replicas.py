"""Cluster mode: replica processes on loopback sharing one bucket (Ceph RGW) and one Redis.

Each test gets a fresh bucket and a trickling local upstream (a 20 MB file sent in small
chunks with pauses), so "mid-file" is a state the test can wait for, not a race.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .clients import file_urls, http_get, http_request, wait_until
from .cluster_services import ClusterServices, PrivateRedis, fresh_bucket_name
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config
from .upstream_server import Throttle, UpstreamServer

pytestmark = pytest.mark.e2e

BIG_BYTES = 20 * 1024 * 1024
PROJECT = "bigpkg"
FILENAME = "bigpkg-1.0-py3-none-any.whl"
# pip's default timeout: no waiting client may go this long without a byte.
PIP_TIMEOUT_S = 15.0


@dataclass
class Fetched:
    """What one client got: the body's sha256 and size, and its longest wait for a byte."""

    sha256: str
    size: int
    longest_silence_s: float
    error: str | None = None


def fetch(url: str, started: threading.Event | None = None) -> Fetched:
    """GET `url` streaming, noting the longest pause between two reads."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    digest = hashlib.sha256()
    size, longest, last = 0, 0.0, time.monotonic()
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        if response.status != 200:
            return Fetched("", 0, 0.0, f"status {response.status}")
        while chunk := response.read1(256 * 1024):
            now = time.monotonic()
            longest, last = max(longest, now - last), now
            digest.update(chunk)
            size += len(chunk)
            if started is not None:
                started.set()
    except (OSError, http.client.HTTPException) as exc:
        return Fetched(digest.hexdigest(), size, longest, repr(exc))
    finally:
        connection.close()
    return Fetched(digest.hexdigest(), size, longest)


@pytest.fixture
def big_upstream(make_upstream: Any) -> Iterator[tuple[UpstreamServer, bytes]]:
    server: UpstreamServer = make_upstream(publish=False)
    data = os.urandom(BIG_BYTES)
    server.add_file(PROJECT, FILENAME, data, version="1.0")
    yield server, data


@pytest.fixture
def s3_env(cluster_services: ClusterServices, monkeypatch: pytest.MonkeyPatch) -> ClusterServices:
    """The services, with their keys in this process's environment (proxies inherit it)."""
    for name, value in cluster_services.environment().items():
        monkeypatch.setenv(name, value)
    return cluster_services


class Cluster:
    """Replicas of one bucket and one Redis, started on demand, each with its own disk."""

    def __init__(
        self,
        launcher: ProxyLauncher,
        services: ClusterServices,
        upstream: UpstreamServer,
        redis_url: str | None = None,
    ) -> None:
        self.launcher = launcher
        self.services = services
        self.upstream = upstream
        self.bucket = fresh_bucket_name()
        self.redis_url = redis_url or services.redis_url

    def start_replica(self) -> RunningProxy:
        config = proxy_config(
            self.launcher.new_cache_dir(),
            [self.upstream],
            cache={"s3": self.services.s3_section(self.bucket, prefix="blobs/")},
            cluster={"redis_url": self.redis_url},
        )
        return self.launcher.start(config)

    def objects(self) -> dict[str, int]:
        client = self.services.s3_client()
        listing = client.list_objects_v2(Bucket=self.bucket)
        return {item["Key"]: item["Size"] for item in listing.get("Contents", [])}

    def unfinished_uploads(self) -> list[str]:
        client = self.services.s3_client()
        return [
            u["Key"] for u in client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        ]


@pytest.fixture
def cluster(
    proxy: ProxyLauncher, s3_env: ClusterServices, big_upstream: tuple[UpstreamServer, bytes]
) -> Cluster:
    return Cluster(proxy, s3_env, big_upstream[0])


def _file_path(replica: RunningProxy) -> str:
    return urlsplit(file_urls(replica.page_url(PROJECT))[FILENAME]).path


def test_thirty_clients_on_three_replicas_make_one_upstream_download(
    cluster: Cluster, big_upstream: tuple[UpstreamServer, bytes]
) -> None:
    upstream, data = big_upstream
    upstream.throttle = Throttle(chunk_size=256 * 1024, delay=0.03)
    replicas = [cluster.start_replica() for _ in range(3)]
    path = _file_path(replicas[0])
    urls = [replicas[i % 3].url + path for i in range(30)]
    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(fetch, urls))
    expected = hashlib.sha256(data).hexdigest()
    assert [(r.error, r.size, r.sha256) for r in results] == [(None, BIG_BYTES, expected)] * 30
    assert upstream.count(upstream.file_path(FILENAME)) == 1
    assert wait_until(lambda: cluster.objects() == {f"blobs/{expected}": BIG_BYTES})
    assert cluster.unfinished_uploads() == []
    # One replica went upstream; the others streamed from it or read the bucket.
    sources = 'variant_proxy_cluster_sources_total{source="%s"}'
    assert sum(cluster_metric(r, sources % "upstream") for r in replicas) == 1
    assert sum(cluster_metric(r, sources % "peer") for r in replicas) >= 1


def test_killing_the_downloading_replica_mid_file_still_completes_every_waiting_client(
    cluster: Cluster, big_upstream: tuple[UpstreamServer, bytes]
) -> None:
    upstream, data = big_upstream
    # About 8 s for the whole file: long enough to kill its downloader half-way.
    upstream.throttle = Throttle(chunk_size=128 * 1024, delay=0.05)
    downloader, *others = [cluster.start_replica() for _ in range(3)]
    path = _file_path(downloader)
    upstream_path = upstream.file_path(FILENAME)
    with ThreadPoolExecutor(max_workers=7) as pool:
        first_started = threading.Event()
        pool.submit(fetch, downloader.url + path, first_started)
        assert first_started.wait(30)  # the downloader holds the lock and streams
        waiting = [pool.submit(fetch, others[i % 2].url + path) for i in range(6)]
        # Every waiting client has bytes (streamed from the downloader) before it dies.
        wait_until(lambda: downloader_progress(downloader) >= BIG_BYTES // 3, timeout=30)
        assert upstream.count(upstream_path) == 1
        downloader.kill()
        results = [future.result(timeout=120) for future in waiting]
    expected = hashlib.sha256(data).hexdigest()
    assert [(r.error, r.size, r.sha256) for r in results] == [(None, BIG_BYTES, expected)] * 6
    assert max(r.longest_silence_s for r in results) < PIP_TIMEOUT_S
    assert upstream.count(upstream_path) <= 2
    resumed = "variant_proxy_cluster_resumed_total"
    assert sum(cluster_metric(r, resumed) for r in others) >= 1
    assert wait_until(lambda: cluster.objects() == {f"blobs/{expected}": BIG_BYTES})
    assert cluster.unfinished_uploads() == []


def cluster_metric(replica: RunningProxy, sample: str) -> float:
    """One sample of the replica's `/metrics`, e.g. `..._sources_total{source="peer"}`."""
    for line in http_get(f"{replica.url}/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {sample} in the metrics")


def downloader_progress(replica: RunningProxy) -> float:
    """Bytes the replica has read from the upstream so far (its own metric)."""
    text = http_get(f"{replica.url}/metrics").text
    for line in text.splitlines():
        if line.startswith("variant_proxy_bytes_from_upstream_total"):
            return float(line.split()[-1])
    raise AssertionError("no variant_proxy_bytes_from_upstream_total metric")


def test_a_page_fetched_by_one_replica_is_served_by_another_without_upstream(
    cluster: Cluster,
) -> None:
    upstream = cluster.upstream
    first, second = cluster.start_replica(), cluster.start_replica()
    page_path = upstream.page_path(PROJECT)
    assert FILENAME in file_urls(first.page_url(PROJECT))
    assert upstream.count(page_path) == 1
    assert FILENAME in file_urls(second.page_url(PROJECT))
    assert upstream.count(page_path) == 1


def test_an_invalidation_reaches_every_replica(cluster: Cluster) -> None:
    upstream = cluster.upstream
    first, second = cluster.start_replica(), cluster.start_replica()
    assert set(file_urls(first.page_url(PROJECT))) == {FILENAME}
    assert set(file_urls(second.page_url(PROJECT))) == {FILENAME}
    upstream.add_file(PROJECT, "bigpkg-2.0-py3-none-any.whl", b"two", version="2.0")
    answer = http_request(f"{first.url}/admin/invalidate/{PROJECT}", method="POST")
    assert answer.status == 200, answer.text
    assert wait_until(lambda: len(file_urls(second.page_url(PROJECT))) == 2)


def test_a_new_replica_with_an_empty_disk_serves_stored_files_without_upstream(
    cluster: Cluster, big_upstream: tuple[UpstreamServer, bytes]
) -> None:
    upstream, data = big_upstream
    first = cluster.start_replica()
    path = _file_path(first)
    assert fetch(first.url + path).sha256 == hashlib.sha256(data).hexdigest()
    assert wait_until(lambda: len(cluster.objects()) == 1)
    first.stop()
    before = len(upstream.request_log())
    newcomer = cluster.start_replica()
    got = fetch(newcomer.url + _file_path(newcomer))
    assert (got.error, got.sha256) == (None, hashlib.sha256(data).hexdigest())
    assert upstream.request_log()[before:] == []  # page from Redis, file from the bucket


def test_redis_down_degrades_and_health_says_why(
    proxy: ProxyLauncher,
    s3_env: ClusterServices,
    big_upstream: tuple[UpstreamServer, bytes],
    tmp_path: Path,
) -> None:
    upstream, data = big_upstream
    redis = PrivateRedis(tmp_path / "redis")
    try:
        cluster = Cluster(proxy, s3_env, upstream, redis_url=redis.url)
        first, second = cluster.start_replica(), cluster.start_replica()
        assert http_get(f"{first.url}/health").json()["status"] == "ok"
        redis.stop()
        health = http_get(f"{first.url}/health")
        assert health.status == 200
        body = json.loads(health.body)
        assert body["status"] == "degraded"
        assert any(problem.startswith("redis:") for problem in body["problems"]), body
        expected = hashlib.sha256(data).hexdigest()
        for replica in (first, second):
            got = fetch(replica.url + _file_path(replica))
            assert (got.error, got.sha256) == (None, expected)
    finally:
        redis.stop()


def test_object_store_down_degrades_and_files_still_come_from_upstream(
    proxy: ProxyLauncher, s3_env: ClusterServices, big_upstream: tuple[UpstreamServer, bytes]
) -> None:
    upstream, data = big_upstream
    config = proxy_config(
        proxy.new_cache_dir(),
        [upstream],
        # Nothing listens on port 1: the object store is down from the start.
        cache={
            "s3": {**s3_env.s3_section(fresh_bucket_name()), "endpoint_url": "http://127.0.0.1:1"}
        },
        cluster={"redis_url": s3_env.redis_url},
    )
    replica = proxy.start(config)
    health = http_get(f"{replica.url}/health")
    assert health.status == 200
    body = json.loads(health.body)
    assert body["status"] == "degraded"
    assert any(problem.startswith("object store:") for problem in body["problems"]), body
    got = fetch(replica.url + _file_path(replica))
    assert (got.error, got.sha256) == (None, hashlib.sha256(data).hexdigest())
