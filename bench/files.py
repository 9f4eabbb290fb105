"""File benchmarks: warm throughput against nginx, cold first byte, memory under a 1 GB file.

    .venv/bin/python -m bench.files [--duration SECONDS] [--repeats N] [--skip-huge]

1. Warm file: MB/s (wrk, 8 connections, one thread) for a cached 20 MiB wheel of random
   bytes through variant-proxy, against a static nginx (one worker, sendfile, tcp_nopush)
   serving the same file from disk: `--repeats` rounds of one run each, back to back, the
   first of the pair alternating; the median of the per-round proxy/nginx ratios, best and
   median of each, each server's CPU use during its runs, and how wrk spent its runs: on
   its CPU, waiting for the CPU (other load on the client's core) or waiting for the
   server's bytes. The client, not the server, is the limit on a 2-core machine (see the
   README): only "wrk waits server" says that a server held the client back.
2. Cold file: time to first body byte and total time for 20 MiB wheels the proxy has not
   cached yet (its page is), against downloading the same file straight from the upstream
   (the local aiohttp upstream, sendfile); one aiohttp client, median of 5 files.
3. Memory: peak RSS (VmHWM) of the proxy process while 20 clients stream one 1 GiB file,
   all started at once on a cold cache (one upstream download shared by all). The 1 GiB
   file is sparse, in the run's temporary folder, and deleted with it afterwards.

Prints tables; never fails on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import aiohttp

from bench.common import (
    JSON_ACCEPT,
    BenchSetupError,
    ClientTime,
    ServerProcess,
    WrkPlan,
    WrkResult,
    cpu_seconds,
    exit_on_sigterm,
    http_get,
    load_note,
    machine_note,
    memory_kib,
    pinning_note,
    print_table,
    require_nginx,
    require_wrk,
    run_wrk_watched,
    start_nginx,
    start_proxy,
    start_upstream,
)
from bench.dataset import BenchFile, DataRoot

MIB = 1024 * 1024
WHEEL_PROJECT = "wheelproj"
HUGE_PROJECT = "hugeproj"
WHEEL_BYTES = 20 * MIB
HUGE_BYTES = 1024 * MIB
COLD_FILES = 5
HUGE_CLIENTS = 20
WARM_CONNECTIONS = 8
READ_CHUNK = MIB
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=600, sock_read=120)


def proxy_file_urls(proxy: ServerProcess, project: str) -> dict[str, str]:
    """filename -> absolute proxy URL, read from the proxy's own JSON page."""
    page_url = f"{proxy.url}/simple/{project}/"
    page = json.loads(http_get(page_url, {"Accept": JSON_ACCEPT}))
    return {entry["filename"]: urljoin(page_url, entry["url"]) for entry in page["files"]}


def upstream_file_url(upstream: ServerProcess, project: str, filename: str) -> str:
    return f"{upstream.url}/files/{project}/{filename}"


# --- warm --------------------------------------------------------------------------------


@dataclass
class WarmRuns:
    """One server's alternated wrk runs: MB/s per run, and the CPU its process and wrk used."""

    url: str
    rates: list[float] = field(default_factory=list)
    results: list[WrkResult] = field(default_factory=list)
    clients: list[ClientTime] = field(default_factory=list)
    server_cpu_s: float = 0.0
    wall_s: float = 0.0

    def add(
        self, result: WrkResult, client: ClientTime, file_bytes: int, server_cpu_s: float
    ) -> None:
        # Whole bodies per second (wrk's Transfer/sec has only 3 significant digits).
        self.rates.append(result.requests * file_bytes / result.elapsed_s / 1e6)
        self.results.append(result)
        self.clients.append(client)
        self.server_cpu_s += server_cpu_s
        self.wall_s += result.elapsed_s

    def row(self, name: str, file_bytes: int) -> list[object]:
        top = max(range(len(self.rates)), key=self.rates.__getitem__)
        gigabytes = sum(r.requests for r in self.results) * file_bytes / 1e9
        return [
            name,
            self.rates[top],
            statistics.median(self.rates),
            f"{min(self.rates):,.0f}-{max(self.rates):,.0f}",
            self.results[top].p99_ms,
            f"{self.server_cpu_s / self.wall_s * 100:.0f}%",
            self.server_cpu_s / gigabytes,
            f"{statistics.median(c.running for c in self.clients) * 100:.0f}%",
            f"{statistics.median(c.waiting_for_cpu for c in self.clients) * 100:.0f}%",
            f"{statistics.median(c.waiting_for_server for c in self.clients) * 100:.0f}%",
            sum(result.errors for result in self.results),
        ]


def _warm_run(runs: WarmRuns, pid: int, duration_s: int, file_bytes: int) -> None:
    server_before = cpu_seconds(pid)
    result, client = run_wrk_watched(
        runs.url, connections=WARM_CONNECTIONS, duration_s=duration_s, timeout_s=30
    )
    runs.add(result, client, file_bytes, cpu_seconds(pid) - server_before)


def bench_warm(proxy: ServerProcess, nginx: ServerProcess, wheel: BenchFile, plan: WrkPlan) -> None:
    """Rounds of one nginx run and one proxy run, back to back, the first of the pair
    alternating from round to round: other load on the machine falls on both alike, and
    each round gives one proxy/nginx ratio (their median is the steadiest figure)."""
    servers = {
        "nginx": (nginx, WarmRuns(f"{nginx.url}/{WHEEL_PROJECT}/{wheel.filename}")),
        "variant-proxy": (proxy, WarmRuns(proxy_file_urls(proxy, WHEEL_PROJECT)[wheel.filename])),
    }
    for name, (_, runs) in servers.items():
        body = http_get(runs.url)  # the proxy's warm-up: the first request caches the file
        if len(body) != wheel.size:
            raise BenchSetupError(f"{name} served {len(body)} bytes, expected {wheel.size}")
    names = list(servers)
    for round_number in range(max(plan.repeats, 1)):
        for name in names if round_number % 2 == 0 else reversed(names):
            server, runs = servers[name]
            _warm_run(runs, server.pid, plan.duration_s, wheel.size)
    nginx_runs, proxy_runs = servers["nginx"][1], servers["variant-proxy"][1]
    ratios = [p / n for p, n in zip(proxy_runs.rates, nginx_runs.rates, strict=True)]
    print_table(
        f"Warm file, {wheel.size // MIB} MiB wheel, {WARM_CONNECTIONS} connections, "
        f"{plan.duration_s} s runs, {len(ratios)} rounds of one run each, the first of the pair "
        f"alternating\n(variant-proxy / nginx: {statistics.median(ratios):.2f}x median of the "
        f"per-round ratios, {min(ratios):.2f}-{max(ratios):.2f}; "
        f"{max(proxy_runs.rates) / max(nginx_runs.rates):.2f}x best vs best, "
        f"{statistics.median(proxy_runs.rates) / statistics.median(nginx_runs.rates):.2f}x "
        "median vs median)",
        [
            "server",
            "best MB/s",
            "median MB/s",
            "range MB/s",
            "p99 ms (best)",
            "server CPU",
            "CPU s/GB",
            "wrk on CPU",
            "wrk waits CPU",
            "wrk waits server",
            "errors",
        ],
        [runs.row(name, wheel.size) for name, (_, runs) in servers.items()],
    )


# --- cold --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    first_byte_s: float
    total_s: float
    size: int


async def download(session: aiohttp.ClientSession, url: str) -> Download:
    """GET `url`, reading and dropping the body; times to the first body byte and the end."""
    started = time.perf_counter()
    first_byte = 0.0
    size = 0
    async with session.get(url) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_any():
            if size == 0:
                first_byte = time.perf_counter() - started
            size += len(chunk)
    return Download(first_byte, time.perf_counter() - started, size)


async def _cold_downloads(
    pairs: list[tuple[str, str]],
) -> tuple[list[Download], list[Download]]:
    direct: list[Download] = []
    proxied: list[Download] = []
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        for upstream_url, proxy_url in pairs:
            direct.append(await download(session, upstream_url))
            proxied.append(await download(session, proxy_url))
    return direct, proxied


def bench_cold(proxy: ServerProcess, upstream: ServerProcess, cold: list[BenchFile]) -> None:
    urls = proxy_file_urls(proxy, WHEEL_PROJECT)
    pairs = [
        (upstream_file_url(upstream, WHEEL_PROJECT, f.filename), urls[f.filename]) for f in cold
    ]
    direct, proxied = asyncio.run(_cold_downloads(pairs))
    for got in (*direct, *proxied):
        if got.size != WHEEL_BYTES:
            raise BenchSetupError(f"a cold download got {got.size} bytes, expected {WHEEL_BYTES}")

    def row(name: str, downloads: list[Download]) -> list[object]:
        first = [d.first_byte_s * 1000 for d in downloads]
        total = [d.total_s * 1000 for d in downloads]
        return [
            name,
            statistics.median(first),
            min(first),
            statistics.median(total),
            min(total),
            WHEEL_BYTES / statistics.median([d.total_s for d in downloads]) / 1e6,
        ]

    print_table(
        f"Cold file, {WHEEL_BYTES // MIB} MiB wheels not yet cached, one client, {len(cold)} files",
        ["path", "TTFB med ms", "TTFB min ms", "total med ms", "total min ms", "MB/s (med)"],
        [row("straight from upstream", direct), row("through cold proxy", proxied)],
    )


# --- memory under a huge file --------------------------------------------------------------


def _upstream_bytes(proxy: ServerProcess) -> float:
    text = http_get(f"{proxy.url}/metrics").decode()
    for line in text.splitlines():
        if line.startswith("variant_proxy_bytes_from_upstream_total"):
            return float(line.split()[-1])
    return float("nan")


async def _many_downloads(url: str, clients: int) -> list[Download]:
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT, connector=connector) as session:
        return list(await asyncio.gather(*(download(session, url) for _ in range(clients))))


def bench_huge(upstream: ServerProcess, workdir: Path, huge: BenchFile) -> None:
    with start_proxy(upstream.url + "/simple/", workdir, name="proxy-huge") as proxy:
        url = proxy_file_urls(proxy, HUGE_PROJECT)[huge.filename]
        before = memory_kib(proxy.pid)
        upstream_before = _upstream_bytes(proxy)
        started = time.perf_counter()
        downloads = asyncio.run(_many_downloads(url, HUGE_CLIENTS))
        elapsed = time.perf_counter() - started
        after = memory_kib(proxy.pid)
        from_upstream = _upstream_bytes(proxy) - upstream_before
    complete = sum(1 for d in downloads if d.size == huge.size)
    served = sum(d.size for d in downloads)
    print_table(
        f"Memory: {HUGE_CLIENTS} clients stream one {huge.size // MIB} MiB file, cold, all at once",
        ["figure", "value"],
        [
            ["proxy RSS before (page fetched)", f"{before['VmRSS'] / 1024:.1f} MiB"],
            ["proxy peak RSS before (VmHWM)", f"{before['VmHWM'] / 1024:.1f} MiB"],
            ["proxy peak RSS after (VmHWM)", f"{after['VmHWM'] / 1024:.1f} MiB"],
            ["proxy RSS after", f"{after['VmRSS'] / 1024:.1f} MiB"],
            ["clients with every byte", f"{complete} of {HUGE_CLIENTS}"],
            [
                "bytes served / from upstream",
                f"{served / MIB:,.0f} MiB / {from_upstream / MIB:,.0f} MiB",
            ],
            ["TTFB median (s)", f"{statistics.median(d.first_byte_s for d in downloads):.3f}"],
            ["all done (s)", f"{elapsed:.1f}"],
            ["aggregate MB/s to clients", f"{served / elapsed / 1e6:,.0f}"],
        ],
    )


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run (2 or more)")
    parser.add_argument(
        "--repeats", type=int, default=10, help="rounds of one wrk run per server (warm file)"
    )
    parser.add_argument("--skip-huge", action="store_true", help="leave out the 1 GiB run")
    args = parser.parse_args()
    exit_on_sigterm()
    try:
        require_wrk()
        require_nginx()
    except BenchSetupError as exc:
        raise SystemExit(f"bench.files: {exc}") from None
    print(f"bench.files: {machine_note()}; {pinning_note()}; {load_note()}")
    with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp:
        workdir = Path(tmp)
        data = DataRoot(workdir / "data")
        wheel = data.add_random(
            WHEEL_PROJECT, f"{WHEEL_PROJECT}-1.0-py3-none-any.whl", "1.0", WHEEL_BYTES
        )
        cold = [
            data.add_random(
                WHEEL_PROJECT, f"{WHEEL_PROJECT}-2.{i}-py3-none-any.whl", f"2.{i}", WHEEL_BYTES
            )
            for i in range(COLD_FILES)
        ]
        data.publish(WHEEL_PROJECT, [wheel, *cold])
        huge = data.add_sparse(
            HUGE_PROJECT, f"{HUGE_PROJECT}-1.0-py3-none-any.whl", "1.0", HUGE_BYTES
        )
        data.publish(HUGE_PROJECT, [huge])
        with (
            start_upstream(data.root, workdir) as upstream,
            start_proxy(upstream.url + "/simple/", workdir) as proxy,
            start_nginx(data.root / "files", workdir) as nginx,
        ):
            bench_warm(proxy, nginx, wheel, WrkPlan(args.duration, args.repeats))
            bench_cold(proxy, upstream, cold)
            if not args.skip_huge:
                bench_huge(upstream, workdir, huge)


if __name__ == "__main__":
    main()
