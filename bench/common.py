"""Shared benchmark plumbing: server processes, CPU pinning, wrk runs, memory readings, tables.

Every server a benchmark talks to runs as its own process on 127.0.0.1, its stderr going to
a log file in the run's temporary folder (so a full pipe can never stall it), and is stopped
with SIGTERM (then SIGKILL) when the benchmark leaves its `with` block.

CPU pinning on the 2-core bench machine: the server under test (variant-proxy, proxpi,
nginx) runs on core `SERVER_CPU` (0) and the load generator (wrk, one thread) on core
`CLIENT_CPU` (1), so the two never compete for a core. The bench upstream and the Python
clients of the cold and memory measurements are not pinned. Pinning is done with `taskset`
when it is installed, else skipped (each script's first line says which).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parents[1]
PROXPI_VENV = REPO_ROOT / "bench" / ".venv-proxpi"
SERVER_CPU = 0
CLIENT_CPU = 1
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

PROXY_READY = re.compile(r"variant-proxy: serving on (http://[^\s\"/]+)")
UPSTREAM_READY = re.compile(r"bench-upstream: serving on (http://\S+?)/?\s*$", re.MULTILINE)

HTML_ACCEPT = "text/html"
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"


class BenchSetupError(RuntimeError):
    """A tool is missing or a server did not start; the message says what to do."""


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `with` blocks stop the servers a benchmark started."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)


# --- tools -------------------------------------------------------------------------------


def require_tool(name: str, install_hint: str) -> str:
    """The tool's path, or a `BenchSetupError` telling how to install it."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if path is None:
        raise BenchSetupError(f"{name} is not installed; install it with: {install_hint}")
    return path


def require_wrk() -> str:
    return require_tool("wrk", "apt-get update && apt-get install -y wrk")


def require_nginx() -> str:
    return require_tool("nginx", "apt-get update && apt-get install -y nginx")


def pinned(command: Sequence[str], cpu: int | None) -> list[str]:
    """`command` prefixed with `taskset -c CPU` when taskset exists and the CPU is online;
    `cpu=None` leaves it unpinned."""
    taskset = shutil.which("taskset")
    if cpu is None or taskset is None or cpu not in os.sched_getaffinity(0):
        return list(command)
    return [taskset, "-c", str(cpu), *command]


def pinning_note() -> str:
    if shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2:
        return "no CPU pinning (taskset missing or fewer than 2 CPUs)"
    return f"server pinned to CPU {SERVER_CPU}, client to CPU {CLIENT_CPU} (taskset)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without pip/uv settings, so no server ever sees a real index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# --- server processes ----------------------------------------------------------------------


class ServerProcess:
    """One server process; `url` is its base URL once `start()` returned."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready_pattern: re.Pattern[str] | None = None,
        ready_url: str | None = None,
    ) -> None:
        if (ready_pattern is None) == (ready_url is None):
            raise ValueError("give exactly one of ready_pattern and ready_url")
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.env = dict(env) if env is not None else clean_environment()
        self.cwd = cwd
        self.ready_pattern = ready_pattern
        self.ready_url = ready_url
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BenchSetupError(f"{self.name} is not running")
        return self._process.pid

    def start(self) -> ServerProcess:
        if self._process is not None:
            raise BenchSetupError(f"{self.name} is already running")
        # Only this start's lines count when looking for the announcement.
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                cwd=self.cwd,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self._ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise BenchSetupError(
            f"{self.name} did not start ({' '.join(self.command)}); log:\n{self.log_text()[-3000:]}"
        )

    def _ready(self) -> bool:
        if self.ready_pattern is not None:
            match = self.ready_pattern.search(self.log_text()[self._log_offset :])
            if match is not None:
                self.url = match.group(1).rstrip("/")
                return True
            return False
        assert self.ready_url is not None
        try:
            with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                ok = bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False
        if ok:
            parts = urllib.parse.urlsplit(self.ready_url)
            self.url = f"{parts.scheme}://{parts.netloc}"
        return ok

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> ServerProcess:
        """Use a started server in a `with` block, which stops it at the end."""
        return self if self._process is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_upstream(
    data_root: Path, workdir: Path, cpu: int | None = None, options: Sequence[str] = ()
) -> ServerProcess:
    """The bench upstream (`bench.upstream`) serving `data_root`, started (unpinned: it is
    idle during warm runs and shares the machine with the client during cold ones), with
    its `options` (pacing: see `bench.upstream`)."""
    command = pinned([sys.executable, "-m", "bench.upstream", str(data_root), *options], cpu)
    return ServerProcess(
        "bench upstream",
        command,
        workdir / "upstream.log",
        cwd=REPO_ROOT,
        ready_pattern=UPSTREAM_READY,
    ).start()


def proxy_config_toml(cache_dir: Path, upstream_index_url: str, ttl: int = 3600) -> str:
    """A proxy config: loopback, port 0, JSON access logs, long page TTLs (warm means warm)."""
    return (
        "[server]\n"
        'host = "127.0.0.1"\n'
        "port = 0\n"
        'log_format = "json"\n\n'
        "[cache]\n"
        f'dir = "{cache_dir}"\n'
        f"page_ttl = {ttl}\n"
        f"index_ttl = {ttl}\n\n"
        "[[upstreams]]\n"
        'name = "bench"\n'
        f'url = "{upstream_index_url}"\n'
        f"ttl = {ttl}\n"
    )


def start_proxy(
    upstream_index_url: str, workdir: Path, name: str = "proxy", cpu: int | None = SERVER_CPU
) -> ServerProcess:
    """`python -m proxy serve` on a fresh cache folder under `workdir`, started."""
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    config.write_text(proxy_config_toml(folder / "cache", upstream_index_url))
    command = pinned(
        [sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", "0"], cpu
    )
    return ServerProcess(
        "variant-proxy",
        command,
        folder / "proxy.log",
        cwd=REPO_ROOT,
        ready_pattern=PROXY_READY,
    ).start()


def proxpi_gunicorn() -> Path:
    gunicorn = PROXPI_VENV / "bin" / "gunicorn"
    if not gunicorn.exists() or not (PROXPI_VENV / "bin" / "python").exists():
        raise BenchSetupError(
            f"proxpi is not installed in {PROXPI_VENV}; install it with: "
            f"python3 -m venv {PROXPI_VENV} && {PROXPI_VENV}/bin/pip install proxpi gunicorn"
        )
    return gunicorn


def start_proxpi(
    upstream_index_url: str, workdir: Path, threads: int = 2, cpu: int = SERVER_CPU
) -> ServerProcess:
    """proxpi as its Docker image runs it: gunicorn, one process, `--threads` (default 2)."""
    gunicorn = proxpi_gunicorn()
    folder = workdir / f"proxpi-t{threads}"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = clean_environment(
        {
            "PROXPI_INDEX_URL": upstream_index_url,
            "PROXPI_INDEX_TTL": "3600",
            "PROXPI_CACHE_DIR": str(folder / "cache"),
            "PROXPI_LOGGING_LEVEL": "WARNING",
            # gunicorn keeps its control socket under ~/.gunicorn: keep it in the run folder.
            "HOME": str(folder),
        }
    )
    command = pinned(
        [
            str(gunicorn),
            "--preload",
            "--bind",
            f"127.0.0.1:{port}",
            "--threads",
            str(threads),
            "proxpi.server:app",
        ],
        cpu,
    )
    return ServerProcess(
        f"proxpi (gunicorn, {threads} threads)",
        command,
        folder / "proxpi.log",
        env=env,
        ready_url=f"http://127.0.0.1:{port}/health",
    ).start()


def nginx_config(root: Path, port: int, folder: Path) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(
        f"  {kind}_temp_path {folder / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\n"
        "daemon off;\n"
        f"pid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "  access_log off;\n"
        "  sendfile on;\n"
        "  tcp_nopush on;\n"
        "  default_type application/octet-stream;\n"
        f"{temp_paths}"
        "  server {\n"
        f"    listen 127.0.0.1:{port};\n"
        f"    root {root};\n"
        "    location = /health { return 200 'ok'; }\n"
        "  }\n"
        "}\n"
    )


def start_nginx(root: Path, workdir: Path, cpu: int = SERVER_CPU) -> ServerProcess:
    """A static nginx (one worker, sendfile, no access log) serving `root`, started."""
    nginx = require_nginx()
    folder = workdir / "nginx"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "nginx.conf"
    config.write_text(nginx_config(root, port, folder))
    command = pinned([nginx, "-c", str(config), "-p", str(folder), "-e", "stderr"], cpu)
    return ServerProcess(
        "nginx",
        command,
        folder / "nginx.log",
        ready_url=f"http://127.0.0.1:{port}/health",
    ).start()


# --- wrk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    transfer_bytes_per_s: float
    requests: int
    elapsed_s: float
    errors: int  # socket errors plus non-2xx/3xx answers

    @property
    def transfer_mb_per_s(self) -> float:
        return self.transfer_bytes_per_s / 1e6


_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_UNITS_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return float(match.group(1)) * _UNITS_S[match.group(2)] * 1000


def parse_wrk_output(output: str) -> WrkResult:
    """Read wrk's `--latency` report."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{output}")
        return match

    transfer = find(r"^Transfer/sec:\s+([\d.]+)(\w+)")
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors is not None:
        errors += sum(int(group) for group in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx is not None:
        errors += int(non_2xx.group(1))
    return WrkResult(
        requests_per_s=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=_duration_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=_duration_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        transfer_bytes_per_s=float(transfer.group(1)) * _UNITS_BYTES[transfer.group(2)],
        requests=int(find(r"^\s+(\d+) requests in").group(1)),
        elapsed_s=_duration_ms(find(r"^\s+\d+ requests in ([\d.]+\w+),").group(1)) / 1000,
        errors=errors,
    )


def _wrk_command(
    url: str, connections: int, duration_s: int, headers: Mapping[str, str] | None, timeout_s: int
) -> list[str]:
    command = [
        require_wrk(),
        "-t1",
        f"-c{connections}",
        f"-d{duration_s}s",
        f"--timeout={timeout_s}s",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    return pinned(command, CLIENT_CPU)


def run_wrk(
    url: str,
    *,
    connections: int,
    duration_s: int,
    headers: Mapping[str, str] | None = None,
    timeout_s: int = 10,
) -> WrkResult:
    """One wrk run (one thread, pinned to the client CPU) against `url`."""
    completed = subprocess.run(
        _wrk_command(url, connections, duration_s, headers, timeout_s),
        capture_output=True,
        text=True,
        timeout=duration_s + timeout_s + 30,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchSetupError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    return parse_wrk_output(completed.stdout)


@dataclass(frozen=True)
class ClientTime:
    """How wrk's threads spent the middle of a run (fractions of its wall time, from
    /proc/PID/task/*/schedstat): on a CPU, runnable but waiting for one (other load on the
    client's core), and asleep, which for wrk means waiting for the server's bytes."""

    running: float
    waiting_for_cpu: float
    waiting_for_server: float


def _per_thread(pid: int, name: str) -> list[str]:
    """The text of /proc/PID/task/*/NAME for each live thread of a process (a thread that
    ended meanwhile is left out)."""
    texts: list[str] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                texts.append((task / name).read_text())
    return texts


def _schedstat_ns(pid: int) -> tuple[int, int]:
    """(on-CPU, runnable-waiting) nanoseconds, summed over a process's threads."""
    running = waiting = 0
    for text in _per_thread(pid, "schedstat"):
        with contextlib.suppress(ValueError):
            run_ns, wait_ns, _ = text.split()
            running, waiting = running + int(run_ns), waiting + int(wait_ns)
    return running, waiting


def run_wrk_watched(
    url: str, *, connections: int, duration_s: int, timeout_s: int = 10
) -> tuple[WrkResult, ClientTime]:
    """`run_wrk`, and how wrk spent its run between 0.5 s after the start and 0.5 s before
    the end (`duration_s` must be 2 or more)."""
    command = _wrk_command(url, connections, duration_s, None, timeout_s)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as wrk:
        time.sleep(0.5)
        run_before, wait_before = _schedstat_ns(wrk.pid)
        started = time.monotonic()
        time.sleep(duration_s - 1.0)
        run_after, wait_after = _schedstat_ns(wrk.pid)
        span_ns = (time.monotonic() - started) * 1e9
        output, errors = wrk.communicate(timeout=duration_s + timeout_s + 30)
    if wrk.returncode != 0:
        raise BenchSetupError(f"wrk failed ({wrk.returncode}): {errors.strip()}")
    running, waiting = (run_after - run_before) / span_ns, (wait_after - wait_before) / span_ns
    return parse_wrk_output(output), ClientTime(running, waiting, max(0.0, 1 - running - waiting))


@dataclass(frozen=True)
class WrkPlan:
    """How to measure one figure: `repeats` wrk runs of `duration_s` each, best one kept.

    Other work on the machine can only slow a run down, so the best run is the figure least
    disturbed by it (the bench machine is shared and has 2 cores)."""

    duration_s: int = 5
    repeats: int = 2

    def describe(self) -> str:
        runs = f"best of {self.repeats} runs" if self.repeats > 1 else "1 run"
        return f"{self.duration_s} s per run, {runs}"


def best_wrk(
    url: str,
    plan: WrkPlan,
    *,
    connections: int,
    headers: Mapping[str, str] | None = None,
    timeout_s: int = 10,
) -> WrkResult:
    """The run with the most requests/s out of `plan.repeats` wrk runs."""
    results = [
        run_wrk(
            url,
            connections=connections,
            duration_s=plan.duration_s,
            headers=headers,
            timeout_s=timeout_s,
        )
        for _ in range(max(plan.repeats, 1))
    ]
    return max(results, key=lambda result: result.requests_per_s)


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


# --- small HTTP and memory helpers ---------------------------------------------------------


def http_get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 60) -> bytes:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB, from /proc/PID/status."""
    readings: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            readings[key] = int(value.split()[0])
    return readings


def _children(pid: int) -> list[int]:
    return [int(child) for text in _per_thread(pid, "children") for child in text.split()]


def wait_until_idle(pid: int, quiet_s: float = 0.3, most_s: float = 15.0) -> float:
    """Wait until a server process and its children use (almost) no CPU for `quiet_s`: a
    proxy that just started still spawns and imports its page worker, which would compete
    with what is measured next. Returns the seconds waited (at most `most_s`)."""
    started = time.perf_counter()
    before = cpu_seconds(pid)
    while time.perf_counter() - started < most_s:
        time.sleep(quiet_s)
        now = cpu_seconds(pid)
        if now - before < 0.05 * quiet_s:
            break
        before = now
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its live descendants
    (nginx serves from a worker child of the process started)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            # fields[11], fields[12]: utime and stime (the 14th and 15th of stat(5)).
            total += (int(fields[11]) + int(fields[12])) / ticks
            pending += _children(current)
    return total


# --- output --------------------------------------------------------------------------------


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned text table."""
    cells = [[str(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for position, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if position == 0:
            print("  " + "  ".join("-" * width for width in widths))
    sys.stdout.flush()


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def machine_note() -> str:
    cpus = len(os.sched_getaffinity(0))
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"machine: {cpus} CPUs{', ' + model if model else ''}; Python {sys.version.split()[0]}"


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as elapsed:` ... then `elapsed[0]` is the block's wall time in seconds."""
    box: list[float] = []
    started = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - started)
