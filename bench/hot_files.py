"""Hot paths of files and start-up (issue 9's file figures).

    .venv/bin/python -m bench.hot_files [--repeats 3] [--size-mib 200] [--clients 50]
                                        [--files 20000]

* cold file: a `--size-mib` file of random bytes, straight from the upstream and through a
  proxy that has not cached it (a fresh proxy each time, not pinned to a CPU, as the
  direct path's upstream and client are not), alternating, `--repeats` each, medians of
  MB/s;
* one cold file, `--clients` clients at once: how many bytes (so how many downloads) the
  proxy took from the upstream;
* start-up: a cache holding `--files` files, all over `max_size`, then the time from
  starting the proxy to its first `/health` answer (eviction runs after it listens).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import (
    PROXY_READY,
    REPO_ROOT,
    ServerProcess,
    cpu_seconds,
    exit_on_sigterm,
    load_note,
    machine_note,
    print_table,
    proxy_config_toml,
    start_upstream,
    wait_until_idle,
)
from bench.dataset import DataRoot
from bench.files import (
    CLIENT_TIMEOUT,
    Download,
    _many_downloads,
    _upstream_bytes,
    download,
    proxy_file_urls,
    upstream_file_url,
)
from bench.hot_pages import start_proxy_with

MIB = 1024 * 1024
PROJECT = "coldfile"


def _one(url: str) -> Download:
    async def run() -> Download:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
            return await download(session, url)

    return asyncio.run(run())


def _cold_run(url: str, servers: list[ServerProcess]) -> tuple[Download, float]:
    """One download of `url`, and the CPU seconds it took on its whole path: the servers'
    processes (every thread) and this client."""

    def used() -> float:
        return sum(cpu_seconds(server.pid) for server in servers) + time.process_time()

    before = used()
    got = _one(url)
    return got, used() - before


def bench_cold_file(
    data: DataRoot, upstream: ServerProcess, workdir: Path, size: int, repeats: int
) -> None:
    cold = data.add_random(PROJECT, f"{PROJECT}-1.0-py3-none-any.whl", "1.0", size)
    data.publish(PROJECT, [cold])
    direct: list[float] = []
    proxied: list[float] = []
    cpu: dict[str, list[float]] = {"direct": [], "proxy": []}
    for attempt in range(repeats):
        got, used = _cold_run(upstream_file_url(upstream, PROJECT, cold.filename), [upstream])
        direct.append(got.total_s)
        cpu["direct"].append(used)
        # Not pinned: the direct path has no server to pin (its upstream and client share both
        # cores), and a proxy is deployed unpinned, its threads spread over the cores.
        with start_proxy_with(
            upstream.url + "/simple/", workdir, f"proxy-cold{attempt}", cpu=None
        ) as proxy:
            wait_until_idle(proxy.pid)
            url = proxy_file_urls(proxy, PROJECT)[cold.filename]
            got, used = _cold_run(url, [upstream, proxy])
            assert got.size == size, got
            proxied.append(got.total_s)
            cpu["proxy"].append(used)
    rate_direct = size / statistics.median(direct) / 1e6
    rate_proxy = size / statistics.median(proxied) / 1e6
    cpu_direct, cpu_proxy = statistics.median(cpu["direct"]), statistics.median(cpu["proxy"])
    print_table(
        f"Cold {size // MIB} MiB file, one client, alternating, {repeats} each (median MB/s)\n"
        "(CPU s: every process on the path, the proxy's threads included; with other load on\n"
        "the machine the time tends to the CPU time, on idle cores it can go below it)",
        ["path", "MB/s", "range MB/s", "vs direct", "CPU s"],
        [
            ["straight from the upstream", rate_direct, _range(size, direct), "1x", cpu_direct],
            [
                "through a cold proxy",
                rate_proxy,
                _range(size, proxied),
                f"{rate_proxy / rate_direct:.2f}x",
                cpu_proxy,
            ],
        ],
    )


def _range(size: int, seconds: list[float]) -> str:
    return f"{size / max(seconds) / 1e6:,.0f}-{size / min(seconds) / 1e6:,.0f}"


def bench_many_clients(
    data: DataRoot, upstream: ServerProcess, workdir: Path, clients: int
) -> None:
    shared = data.add_random(
        PROJECT + "-many", "coldfile_many-1.0-py3-none-any.whl", "1.0", 20 * MIB
    )
    data.publish(PROJECT + "-many", [shared])
    with start_proxy_with(upstream.url + "/simple/", workdir, "proxy-many") as proxy:
        url = proxy_file_urls(proxy, PROJECT + "-many")[shared.filename]
        downloads = asyncio.run(_many_downloads(url, clients))
        from_upstream = _upstream_bytes(proxy)
    complete = sum(1 for d in downloads if d.size == shared.size)
    print_table(
        f"{clients} clients on one cold {shared.size // MIB} MiB file, all at once",
        ["figure", "value"],
        [
            ["clients with every byte", f"{complete} of {clients}"],
            [
                "upstream downloads (bytes from upstream / file size)",
                f"{from_upstream / shared.size:.2f}",
            ],
        ],
    )


def _fill_store(cache: Path, files: int) -> None:
    """A store of `files` 1 KiB files, written the way the store lays them out."""
    store = cache / "store"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import asyncio,sys;from pathlib import Path;"
            "from proxy.store.file_store import FileStore\n"
            "async def m():\n async with FileStore(Path(sys.argv[1]), None): pass\n"
            "asyncio.run(m())",
            str(store),
        ],
        check=True,
        cwd=REPO_ROOT,
    )
    from proxy.store.local_disk import LocalDiskBackend

    backend = LocalDiskBackend(store)
    rows = []
    for number in range(files):
        data = number.to_bytes(4, "big") * 256
        key = "sha256-" + hashlib.sha256(data).hexdigest()
        path = backend.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rows.append((key, len(data), hashlib.sha256(data).hexdigest(), number + 1))
    with sqlite3.connect(store / "index.sqlite3") as connection:
        connection.executemany(
            "INSERT INTO files (key, size, sha256, last_access) VALUES (?, ?, ?, ?)", rows
        )


def bench_startup(
    data: DataRoot, upstream: ServerProcess, workdir: Path, files: int, repeats: int
) -> None:
    times: dict[int, list[float]] = {0: [], files: []}
    for attempt, count in [(a, c) for a in range(repeats) for c in (0, files)]:
        folder = workdir / f"startup{attempt}-{count}"
        folder.mkdir()
        _fill_store(folder / "cache", count)
        config = folder / "config.toml"
        toml = proxy_config_toml(folder / "cache", upstream.url + "/simple/")
        config.write_text(toml.replace("[cache]\n", '[cache]\nmax_size = "1KiB"\n'))
        command = [sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", "0"]
        started = time.perf_counter()
        with ServerProcess(
            "proxy", command, folder / "proxy.log", cwd=REPO_ROOT, ready_pattern=PROXY_READY
        ):
            times[count].append(time.perf_counter() - started)
    print_table(
        f"Start-up: process start to listening, {repeats} times each, alternating",
        ["cache", "median s", "range s"],
        [
            [label, statistics.median(t), f"{min(t):.2f}-{max(t):.2f}"]
            for label, t in (("empty", times[0]), (f"{files} files over max_size", times[files]))
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--only", choices=["cold", "many", "startup"])
    args = parser.parse_args()
    exit_on_sigterm()
    print(machine_note())
    print(load_note())
    with tempfile.TemporaryDirectory(prefix="bench-hot-files-") as temp:
        workdir = Path(temp)
        data = DataRoot(workdir / "data")
        data.publish("placeholder", [])
        with start_upstream(data.root, workdir) as upstream:
            if args.only in (None, "cold"):
                bench_cold_file(data, upstream, workdir, args.size_mib * MIB, args.repeats)
            if args.only in (None, "many"):
                bench_many_clients(data, upstream, workdir, args.clients)
            if args.only in (None, "startup"):
                bench_startup(data, upstream, workdir, args.files, args.repeats)


if __name__ == "__main__":
    main()
