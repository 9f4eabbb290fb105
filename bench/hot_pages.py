"""Hot paths of large and many pages, side by side with proxpi (issue 9's page figures).

    .venv/bin/python -m bench.hot_pages [--files 20000] [--repeats 3] [--projects 300]

* cold page: a project of `--files` files that neither server has seen, JSON, the proxy and
  proxpi alternating (`--repeats` each, a fresh project every time), medians; meanwhile, and
  for a second after the answer (the proxy makes its merged page after answering), a thread
  asks the server's `/health` every 5 ms and keeps the worst answer time. Both servers are
  probed so: the probe's requests (some 50 during a cold page) cost the server CPU on its
  one core, and a peer spared them would be timed under a lighter load;
* 304 revalidation: the same page through a proxy whose upstream TTL is 1 s, asked again
  after the TTL (the upstream answers 304), with the same `/health` probe;
* memory: `--projects` different 1k-file projects asked once each (JSON), then the RSS of
  each server.

The pages list files that do not exist (only pages are fetched). Everything on loopback.

Pinning: both servers run on CPU 0 (`bench.common.pinned`), and what they start inherits
it: the proxy's page worker process shares that core with the proxy, as proxpi's gunicorn
worker and threads share it. Each server gets the same single core, which is the fair
comparison: unpinned, the proxy's worker would get the second core, the one the upstream
and the client run on, and the figure would measure that core, not the proxy.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import (
    JSON_ACCEPT,
    PROXY_READY,
    REPO_ROOT,
    SERVER_CPU,
    ServerProcess,
    _children,
    exit_on_sigterm,
    http_get,
    load_note,
    machine_note,
    memory_kib,
    pinned,
    print_table,
    proxpi_gunicorn,
    proxy_config_toml,
    start_proxpi,
    start_upstream,
)
from bench.dataset import BenchFile, DataRoot

HEALTH_EVERY_S = 0.005
REVALIDATE_TTL_S = 1
# How long /health is still probed after a cold page's answer.
AFTER_ANSWER_S = 1.0


def publish_listing(data: DataRoot, project: str, n_files: int) -> None:
    """A project page listing `n_files` wheels and sdists whose bytes do not exist."""
    dist = project.replace("-", "_")
    files = []
    for number in range(n_files):
        version = f"1.{number // 11}.0"
        if number % 11 == 10:
            filename = f"{dist}-{version}.tar.gz"
        else:
            python = f"cp3{number % 11}"
            filename = f"{dist}-{version}-{python}-{python}-manylinux_2_17_x86_64.whl"
        digest = hashlib.sha256(filename.encode()).hexdigest()
        files.append(BenchFile(filename, version, data.root / "none", digest, 1000 + number))
    data.publish(project, files)


class HealthProbe:
    """Asks `/health` every few ms in a thread while a block runs; keeps the worst time."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url + "/health"
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            http_get(self.url, timeout=30)
            self.worst = max(self.worst, time.perf_counter() - started)
            time.sleep(HEALTH_EVERY_S)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _timed_get(url: str) -> float:
    started = time.perf_counter()
    http_get(url, headers={"Accept": JSON_ACCEPT}, timeout=120)
    return time.perf_counter() - started


def start_proxy_with(
    index_url: str,
    workdir: Path,
    name: str,
    ttl: int = 3600,
    extra: str = "",
    cpu: int | None = SERVER_CPU,
) -> ServerProcess:
    """A proxy on `index_url`, pinned to `cpu` (None: not pinned), started."""
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    toml = proxy_config_toml(folder / "cache", index_url, ttl=ttl)
    config.write_text(toml.replace("[cache]\n", "[cache]\n" + extra))
    command = pinned(
        [
            str(REPO_ROOT / ".venv" / "bin" / "python"),
            "-m",
            "proxy",
            "serve",
            "--config",
            str(config),
            "--port",
            "0",
        ],
        cpu,
    )
    return ServerProcess(
        "variant-proxy", command, folder / "proxy.log", cwd=REPO_ROOT, ready_pattern=PROXY_READY
    ).start()


def _ms(values: list[float]) -> str:
    low, middle, high = (1000 * v for v in (min(values), statistics.median(values), max(values)))
    return f"{middle:,.0f} ({low:,.0f}-{high:,.0f})"


def bench_cold_page(
    data: DataRoot, upstream: ServerProcess, workdir: Path, n_files: int, repeats: int
) -> None:
    names = [f"cold{n_files}-{i}" for i in range(2 * repeats)]
    for name in names:
        publish_listing(data, name, n_files)
    index_url = upstream.url + "/simple/"
    proxy_times: list[float] = []
    proxpi_times: list[float] = []
    health: list[float] = []
    peer_health: list[float] = []
    with (
        start_proxy_with(index_url, workdir, "proxy-cold") as proxy,
        start_proxpi(index_url, workdir) as proxpi,
    ):
        for attempt in range(repeats):
            with HealthProbe(proxy.url) as probe:
                proxy_times.append(_timed_get(f"{proxy.url}/simple/{names[2 * attempt]}/"))
                # The merged page is made after the answer: probed too, and done before the
                # peer's turn (it would take the peer's CPU).
                time.sleep(AFTER_ANSWER_S)
            health.append(probe.worst)
            with HealthProbe(proxpi.url) as probe:  # the same extra requests for the peer
                proxpi_times.append(_timed_get(f"{proxpi.url}/index/{names[2 * attempt + 1]}/"))
                time.sleep(AFTER_ANSWER_S)
            peer_health.append(probe.worst)
    ratio = statistics.median(proxy_times) / statistics.median(proxpi_times)
    print_table(
        f"Cold {n_files}-file page, JSON, alternating, {repeats} each: median (range) ms",
        ["server", "cold page ms", "worst /health ms meanwhile", "vs proxpi"],
        [
            ["variant-proxy", _ms(proxy_times), _ms(health), f"{ratio:.2f}x"],
            ["proxpi (gunicorn, 2 threads)", _ms(proxpi_times), _ms(peer_health), "1x"],
        ],
    )


def bench_revalidation(
    data: DataRoot, upstream: ServerProcess, workdir: Path, n_files: int, repeats: int
) -> None:
    name = f"reval{n_files}"
    publish_listing(data, name, n_files)
    times: list[float] = []
    health: list[float] = []
    with start_proxy_with(
        upstream.url + "/simple/", workdir, "proxy-reval", ttl=REVALIDATE_TTL_S
    ) as proxy:
        url = f"{proxy.url}/simple/{name}/"
        _timed_get(url)
        for _ in range(repeats):
            time.sleep(REVALIDATE_TTL_S + 0.2)
            with HealthProbe(proxy.url) as probe:
                times.append(_timed_get(url))
            health.append(probe.worst)
    print_table(
        f"{n_files}-file page revalidated with a 304 after its TTL, {repeats} times",
        ["figure", "median (range) ms"],
        [["page answer", _ms(times)], ["worst /health meanwhile", _ms(health)]],
    )


def _ask_every(base: Callable[[str], str], names: list[str]) -> None:
    for name in names:
        http_get(base(name), headers={"Accept": JSON_ACCEPT}, timeout=120)


def _largest_memory(pid: int) -> dict[str, int]:
    """The readings of the process or of its child with the most RSS (gunicorn serves from
    a worker process, the one that holds proxpi's caches)."""
    readings = [memory_kib(p) for p in (pid, *_children(pid))]
    return max(readings, key=lambda m: m["VmRSS"])


def bench_memory(data: DataRoot, upstream: ServerProcess, workdir: Path, projects: int) -> None:
    names = [f"many{i}" for i in range(projects)]
    for name in names:
        publish_listing(data, name, 1000)
    index_url = upstream.url + "/simple/"
    rows = []
    with start_proxy_with(index_url, workdir, "proxy-memory") as proxy:
        _ask_every(lambda n: f"{proxy.url}/simple/{n}/", names)
        rows.append(["variant-proxy", _largest_memory(proxy.pid)])
    with start_proxpi(index_url, workdir) as proxpi:
        _ask_every(lambda n: f"{proxpi.url}/index/{n}/", names)
        rows.append(["proxpi (gunicorn worker, 2 threads)", _largest_memory(proxpi.pid)])
    print_table(
        f"Memory after {projects} different 1k-file projects (JSON), MiB",
        ["server", "RSS", "peak RSS"],
        [[name, m["VmRSS"] / 1024, m["VmHWM"] / 1024] for name, m in rows],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--projects", type=int, default=300)
    parser.add_argument("--only", choices=["cold", "revalidation", "memory"])
    args = parser.parse_args()
    exit_on_sigterm()
    proxpi_gunicorn()
    print(machine_note())
    print(load_note())
    with tempfile.TemporaryDirectory(prefix="bench-hot-pages-") as temp:
        workdir = Path(temp)
        data = DataRoot(workdir / "data")
        with start_upstream(data.root, workdir) as upstream:
            if args.only in (None, "cold"):
                bench_cold_page(data, upstream, workdir, args.files, args.repeats)
            if args.only in (None, "revalidation"):
                bench_revalidation(data, upstream, workdir, args.files, args.repeats)
            if args.only in (None, "memory"):
                bench_memory(data, upstream, workdir, args.projects)


if __name__ == "__main__":
    main()
