"""What the access log costs: warm page requests/s with `[server] access_log` on and off.

    .venv/bin/python -m bench.access_log [--duration SECONDS] [--rounds N]

Two proxies on the same upstream (a 1001-file project), one logging every request as a JSON
line to a file, one not; wrk (32 connections) alternates between them round by round, and
the medians are printed side by side: requests/s, and the proxy's own CPU time per request
(user + system, from /proc), which a busy machine disturbs far less than throughput.
Prints a table; never fails on a figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import (
    HTML_ACCEPT,
    PROXY_READY,
    REPO_ROOT,
    SERVER_CPU,
    ServerProcess,
    cpu_seconds,
    exit_on_sigterm,
    http_get,
    load_note,
    machine_note,
    pinned,
    print_table,
    proxy_config_toml,
    require_wrk,
    run_wrk,
    start_upstream,
)
from bench.dataset import DataRoot, add_plain_project

PROJECT = "bigproj"
CONNECTIONS = 32


def start_proxy_with(access_log: bool, upstream_index_url: str, workdir: Path) -> ServerProcess:
    folder = workdir / f"proxy-access-log-{'on' if access_log else 'off'}"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    toml = proxy_config_toml(folder / "cache", upstream_index_url)
    config.write_text(
        toml.replace("[server]\n", f"[server]\naccess_log = {str(access_log).lower()}\n")
    )
    command = pinned(
        [sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", "0"],
        SERVER_CPU,
    )
    return ServerProcess(
        "variant-proxy", command, folder / "proxy.log", cwd=REPO_ROOT, ready_pattern=PROXY_READY
    ).start()


def _runs(values: list[float]) -> str:
    return " ".join(f"{value:.0f}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs per proxy")
    args = parser.parse_args()
    exit_on_sigterm()
    require_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-access-log-") as tmp:
        workdir = Path(tmp)
        data = DataRoot(workdir / "data")
        add_plain_project(data, PROJECT)
        figures: dict[bool, list[float]] = {True: [], False: []}
        cpu_us: dict[bool, list[float]] = {True: [], False: []}
        with start_upstream(data.root, workdir) as upstream:
            index_url = upstream.url + "/simple/"
            with (
                start_proxy_with(True, index_url, workdir) as on,
                start_proxy_with(False, index_url, workdir) as off,
            ):
                servers = {True: on, False: off}
                headers = {"Accept": HTML_ACCEPT}
                for server in servers.values():
                    http_get(f"{server.url}/simple/{PROJECT}/", headers)  # warm
                for _ in range(args.rounds):
                    for logging_on, server in servers.items():
                        cpu_before = cpu_seconds(server.pid)
                        result = run_wrk(
                            f"{server.url}/simple/{PROJECT}/",
                            connections=CONNECTIONS,
                            duration_s=args.duration,
                            headers=headers,
                        )
                        figures[logging_on].append(result.requests_per_s)
                        used = cpu_seconds(server.pid) - cpu_before
                        cpu_us[logging_on].append(1e6 * used / max(result.requests, 1))
                logged = sum(1 for _ in (workdir / "proxy-access-log-on" / "proxy.log").open())
    on_median, off_median = (statistics.median(figures[key]) for key in (True, False))
    cpu_on, cpu_off = (statistics.median(cpu_us[key]) for key in (True, False))
    print_table(
        f"Warm page {PROJECT} (1001 files, HTML), {CONNECTIONS} connections, "
        f"{args.rounds} alternating runs of {args.duration} s each, medians",
        ["access log", "req/s", "runs (req/s)", "CPU us/request", "runs (us)"],
        [
            [
                "on (JSON lines)",
                round(on_median),
                _runs(figures[True]),
                round(cpu_on, 1),
                _runs(cpu_us[True]),
            ],
            [
                "off",
                round(off_median),
                _runs(figures[False]),
                round(cpu_off, 1),
                _runs(cpu_us[False]),
            ],
        ],
    )
    print(
        f"access log on: {100 * (1 - on_median / off_median):+.1f}% req/s lost, "
        f"{cpu_on - cpu_off:+.1f} us CPU per request ({100 * (cpu_on / cpu_off - 1):+.1f}%); "
        f"{logged} lines logged"
    )
    print(machine_note())
    print(load_note())


if __name__ == "__main__":
    main()
