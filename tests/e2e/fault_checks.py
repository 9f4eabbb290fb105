"""What every fault test checks at its end: nothing partial served or kept, no 5xx of the
proxy's own making, no traceback in the log, and the proxy still serving.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .builders import BuiltDist, build_wheel
from .clients import HttpResponse, http_get, wait_until
from .fault_upstream import FaultUpstream
from .proxy_process import ProxyLauncher, RunningProxy

PROJECT = "faulty"
# 5xx that say "the upstream failed" (502) or "the upstream was too slow" (504): never ours.
UPSTREAM_STATUSES = (502, 504)


def build_files(root: Path, sizes: Mapping[str, int]) -> dict[str, BuiltDist]:
    """One real wheel of project `faulty` per (version -> payload size)."""
    return {
        version: build_wheel(root, PROJECT, version, payload_size=size)
        for version, size in sizes.items()
    }


def host(upstream: FaultUpstream, dists: Iterable[BuiltDist]) -> None:
    for dist in dists:
        upstream.add_file(PROJECT, dist.filename, dist.data)


def start_proxy(
    launcher: ProxyLauncher,
    upstream: FaultUpstream,
    *,
    cache_dir: Path | None = None,
    upstream_settings: Mapping[str, Any] | None = None,
    **sections: Any,
) -> RunningProxy:
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "log_format": "json"},
        "cache": {"dir": str(cache_dir or launcher.new_cache_dir())},
        "upstreams": [{"name": "faulty", "url": upstream.index_url, **(upstream_settings or {})}],
    }
    config.update(sections)
    return launcher.start(config)


def file_url(proxy: RunningProxy, dist: BuiltDist) -> str:
    return f"{proxy.url}/files/{PROJECT}/sha256-{dist.sha256}/{dist.filename}"


def is_broken_or_upstream_error(outcome: HttpResponse | Exception) -> bool:
    """A failed download reaches the client as a broken transfer or a 502/504, never a 200."""
    if isinstance(outcome, Exception):
        return True
    return outcome.status in UPSTREAM_STATUSES


def store_dir(proxy: RunningProxy) -> Path:
    return proxy.cache_dir / "store"


def partial_downloads(proxy: RunningProxy) -> list[Path]:
    tmp = store_dir(proxy) / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


def stored_hashes(proxy: RunningProxy) -> set[str]:
    """sha256 of every complete file the store holds."""
    files = store_dir(proxy) / "files"
    return {
        hashlib.sha256(path.read_bytes()).hexdigest() for path in files.rglob("*") if path.is_file()
    }


def assert_no_traceback(proxy: RunningProxy) -> None:
    log = proxy.log_text()
    assert "Traceback" not in log, log[-4000:]


def assert_survived(
    proxy: RunningProxy, good: Iterable[BuiltDist], *, check_log: bool = True
) -> None:
    """Nothing partial or wrong kept, no 5xx of our own, no traceback, still serving."""
    # A client has the last byte a moment before the store has renamed the file into place.
    assert wait_until(lambda: partial_downloads(proxy) == [])
    allowed = {dist.sha256 for dist in good}
    assert stored_hashes(proxy) <= allowed, "the store keeps bytes no page listed"
    if check_log:
        assert_no_traceback(proxy)
    own_5xx = [
        record
        for record in proxy.log_records()
        if isinstance(record.get("status"), int)
        and record["status"] >= 500
        and record["status"] not in UPSTREAM_STATUSES
    ]
    assert own_5xx == []
    assert http_get(f"{proxy.url}/health").status == 200


def assert_serves(proxy: RunningProxy, dist: BuiltDist) -> HttpResponse:
    response = http_get(file_url(proxy, dist))
    assert response.status == 200, response.text
    assert response.body == dist.data
    return response
