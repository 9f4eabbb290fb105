"""Fault suite, upstream side: a misbehaving upstream, a killed or stopped proxy, a client that
leaves, a full disk. Every test ends with `assert_survived`: nothing partial served or kept,
no 5xx of the proxy's own making, no traceback in the log, the proxy still serving.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .builders import BuiltDist
from .clients import HttpResponse, fetch_outcome, http_get, read_then_disconnect, wait_until
from .fault_checks import (
    assert_serves,
    assert_survived,
    build_files,
    file_url,
    host,
    is_broken_or_upstream_error,
    partial_downloads,
    start_proxy,
    store_dir,
    stored_hashes,
)
from .fault_upstream import Fault, FaultUpstream
from .proxy_process import ProxyLauncher

pytestmark = pytest.mark.e2e

# Seconds the proxy waits on a silent upstream before giving up (connect and each read).
UPSTREAM_TIMEOUT_S = 1
SMALL = 200_000
LARGE = 3_000_000


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltDist]:
    return build_files(
        tmp_path_factory.mktemp("faulty"), {"1.0": SMALL, "2.0": LARGE, "3.0": SMALL // 2}
    )


@pytest.fixture
def upstream(dists: dict[str, BuiltDist]) -> Iterator[FaultUpstream]:
    with FaultUpstream() as server:
        host(server, dists.values())
        yield server


FILE_FAULTS = [
    Fault.CUT,
    Fault.CORRUPT,
    Fault.LONG_LENGTH,
    Fault.SHORT_LENGTH,
    Fault.HANG,
    Fault.HANG_BODY,
    Fault.STATUS_503,
    Fault.RESET,
]


@pytest.mark.parametrize("fault", FILE_FAULTS, ids=[f.value for f in FILE_FAULTS])
def test_a_faulty_upstream_file_is_never_served_whole_nor_kept(
    fault: Fault, upstream: FaultUpstream, proxy: ProxyLauncher, dists: dict[str, BuiltDist]
) -> None:
    running = start_proxy(proxy, upstream, upstream_settings={"timeout": UPSTREAM_TIMEOUT_S})
    dist = dists["2.0"]
    upstream.set_fault(dist.filename, fault)
    outcome = fetch_outcome(file_url(running, dist))
    assert is_broken_or_upstream_error(outcome), outcome
    assert_survived(running, dists.values())
    # Once the upstream behaves again, the same URL gives the right bytes, and keeps them.
    upstream.set_fault(dist.filename, Fault.NONE)
    assert_serves(running, dist)
    assert wait_until(lambda: dist.sha256 in stored_hashes(running))
    assert_survived(running, dists.values())


def test_a_trickling_upstream_is_relayed_whole_while_the_proxy_keeps_serving(
    upstream: FaultUpstream, proxy: ProxyLauncher, dists: dict[str, BuiltDist]
) -> None:
    running = start_proxy(proxy, upstream, upstream_settings={"timeout": UPSTREAM_TIMEOUT_S})
    dist = dists["1.0"]
    upstream.set_fault(dist.filename, Fault.TRICKLE)
    outcome: list[HttpResponse | Exception] = []
    client = threading.Thread(target=lambda: outcome.append(fetch_outcome(file_url(running, dist))))
    client.start()
    assert wait_until(lambda: upstream.gets(upstream.file_path(dist.filename)) == 1)
    assert http_get(f"{running.url}/health").status == 200  # not blocked by the download
    client.join(timeout=60)
    answer = outcome[0]
    assert isinstance(answer, HttpResponse) and answer.status == 200
    assert answer.body == dist.data
    assert_survived(running, dists.values())


def _download_started(running_cache: Path) -> bool:
    tmp = running_cache / "store" / "tmp"
    return tmp.exists() and any(p.stat().st_size > 0 for p in tmp.iterdir())


def test_sigkill_mid_download_leaves_nothing_and_a_restart_serves_the_file(
    upstream: FaultUpstream, proxy: ProxyLauncher, dists: dict[str, BuiltDist]
) -> None:
    running = start_proxy(proxy, upstream)
    dist = dists["1.0"]
    upstream.set_fault(dist.filename, Fault.TRICKLE)
    client = threading.Thread(target=fetch_outcome, args=(file_url(running, dist),))
    client.start()
    assert wait_until(lambda: _download_started(running.cache_dir))
    running.kill()
    client.join(timeout=30)
    running.start()
    assert partial_downloads(running) == []
    assert stored_hashes(running) == set()
    upstream.set_fault(dist.filename, Fault.NONE)
    assert_serves(running, dist)
    assert_survived(running, dists.values())


def test_sigterm_lets_a_running_download_finish_into_the_store(
    upstream: FaultUpstream, proxy: ProxyLauncher, dists: dict[str, BuiltDist]
) -> None:
    running = start_proxy(proxy, upstream)
    dist = dists["1.0"]
    upstream.set_fault(dist.filename, Fault.TRICKLE)
    # The client leaves, so no open request holds the shutdown back: only the download runs.
    read_then_disconnect(file_url(running, dist), 32 * 1024)
    assert running.stop() == 0
    assert partial_downloads(running) == []
    assert stored_hashes(running) == {dist.sha256}
    running.start()
    assert assert_serves(running, dist).header("X-Cache") == "hit"
    assert upstream.gets(upstream.file_path(dist.filename)) == 1
    assert_survived(running, dists.values())


def test_a_client_that_leaves_mid_download_does_not_stop_it(
    upstream: FaultUpstream, proxy: ProxyLauncher, dists: dict[str, BuiltDist]
) -> None:
    running = start_proxy(proxy, upstream)
    dist = dists["1.0"]
    upstream.set_fault(dist.filename, Fault.TRICKLE)
    received = read_then_disconnect(file_url(running, dist), 32 * 1024)
    assert received.startswith(b"HTTP/1.1 200")
    assert wait_until(lambda: dist.sha256 in stored_hashes(running), timeout=30)
    assert assert_serves(running, dist).header("X-Cache") == "hit"
    assert upstream.gets(upstream.file_path(dist.filename)) == 1
    assert_survived(running, dists.values())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A cache folder whose file store lives on a 2 MiB tmpfs (needs root and mount)."""
    cache = tmp_path / "cache"
    store = cache / "store"
    store.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(store)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()[:200]}")
    try:
        yield cache
    finally:
        subprocess.run(["umount", "-l", str(store)], check=False)


def _free_bytes(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def test_a_full_disk_fails_one_download_and_gives_the_space_back(
    small_disk: Path, upstream: FaultUpstream, proxy: ProxyLauncher, dists: dict[str, BuiltDist]
) -> None:
    running = start_proxy(proxy, upstream, cache_dir=small_disk)
    store = store_dir(running)
    free_before = _free_bytes(store)
    too_large = dists["2.0"]  # 3 MB on a 2 MiB disk
    outcome = fetch_outcome(file_url(running, too_large))
    assert is_broken_or_upstream_error(outcome) or (
        isinstance(outcome, HttpResponse) and outcome.status == 507
    )
    # The failed download's space is given back at once, so the next download fits.
    assert wait_until(lambda: _free_bytes(store) >= free_before - 64 * 1024)
    assert_serves(running, dists["1.0"])
    assert_serves(running, dists["3.0"])
    wanted = {dists["1.0"].sha256, dists["3.0"].sha256}
    assert wait_until(lambda: stored_hashes(running) == wanted)
    assert_survived(running, dists.values())
    running.stop()
