"""A real `python -m proxy serve` process for the e2e tests: config, start, readiness, stop.

The proxy is started on port 0 with a TOML config written from a dict; it announces
`variant-proxy: serving on http://127.0.0.1:PORT` on stderr when it is ready. A reader thread
copies all of stderr (the announcement and one JSON log line per request) into a log file, so
the pipe never fills, and hands the announced URL to `start()`. `stop()` sends SIGTERM and
waits. A stopped proxy can be started again with the same config and cache folder.
"""

from __future__ import annotations

import copy
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import tomli_w

from .upstream_server import UpstreamServer

# The start-up line, as a JSON object or a text line: the URL ends at a quote or a blank.
READY_PATTERN = re.compile(r"variant-proxy: serving on (http://[^\s\"/]+)")
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


# The `read_metric` fixture: `(proxy, logical metric name) -> current value`.
MetricReader = Callable[["RunningProxy", str], float]


class ProxyStartError(RuntimeError):
    """The proxy exited or stayed silent instead of announcing its address; carries its log."""


def proxy_config(
    cache_dir: Path,
    upstreams: Sequence[UpstreamServer | tuple[str, UpstreamServer]],
    *,
    cache: Mapping[str, Any] | None = None,
    upstream_settings: Mapping[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """A config dict: loopback server on port 0, `cache_dir`, the upstreams in priority order
    (named `upstream1`, `upstream2`, ... unless given as `(name, server)`), plus any further
    top-level sections (`pins={...}`, `variants={...}`). `upstream_settings` (e.g. `ttl`)
    apply to every upstream."""
    entries = []
    for position, upstream in enumerate(upstreams, start=1):
        name, server = (
            upstream if isinstance(upstream, tuple) else (f"upstream{position}", upstream)
        )
        entries.append({"name": name, "url": server.index_url, **(upstream_settings or {})})
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "log_format": "json"},
        "cache": {"dir": str(cache_dir), **(cache or {})},
        "upstreams": entries,
    }
    config.update(sections)
    return config


def _proxy_environment() -> dict[str, str]:
    # The proxy must only ever see the upstreams of its config, never this machine's pip setup.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _drain(stream: IO[bytes], log_path: Path, announced: queue.Queue[str | None]) -> None:
    told = False
    with log_path.open("ab") as log:
        for raw in iter(stream.readline, b""):
            log.write(raw)
            log.flush()
            if not told:
                match = READY_PATTERN.search(raw.decode("utf-8", errors="replace"))
                if match:
                    announced.put(match.group(1))
                    told = True
    if not told:
        announced.put(None)


def run_proxy_cli(
    args: Sequence[str], *, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """`python -m proxy ARGS` (e.g. `invalidate PROJECT --proxy URL`), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        env=_proxy_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class RunningProxy:
    """One proxy process (restartable) and the files it was started with."""

    def __init__(self, config: Mapping[str, Any], workdir: Path) -> None:
        self.config: dict[str, Any] = copy.deepcopy(dict(config))
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config_path = workdir / "config.toml"
        self.log_path = workdir / "proxy.log"
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def cache_dir(self) -> Path:
        return Path(self.config["cache"]["dir"])

    @property
    def index_url(self) -> str:
        return f"{self.url}/simple/"

    def page_url(self, project: str) -> str:
        return f"{self.url}/simple/{project}/"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = READY_TIMEOUT_S) -> RunningProxy:
        if self.running:
            raise ProxyStartError("proxy already running")
        self.config_path.write_text(tomli_w.dumps(self.config))
        with self.log_path.open("ab") as log:
            log.write(b"---- start ----\n")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "serve",
                "--config",
                str(self.config_path),
                "--port",
                "0",
            ],
            cwd=self.workdir,
            env=_proxy_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert process.stderr is not None
        announced: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(
            target=_drain, args=(process.stderr, self.log_path, announced), daemon=True
        )
        reader.start()
        self._process, self._reader = process, reader
        try:
            url = announced.get(timeout=timeout)
            reason = "closed stderr (exit status {status})"
        except queue.Empty:
            url, reason = None, f"was silent for {timeout} s (exit status {{status}})"
        if url is None:
            status = self.stop()
            reason = reason.format(status=status)
            raise ProxyStartError(
                f"proxy {reason} instead of announcing its address; log:\n{self.log_text()}"
            )
        self.url = url.rstrip("/")
        return self

    def stop(self) -> int | None:
        """SIGTERM, wait (kill after a timeout); returns the exit status."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT_S)
            self._reader = None
        return process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up of any kind runs."""
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT_S)
            self._reader = None

    def restart(self) -> RunningProxy:
        """Stop and start again with the same config and cache folder (a new port)."""
        self.stop()
        return self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines the proxy wrote so far (other lines are skipped)."""
        records = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records


class ProxyLauncher:
    """Starts proxies in numbered folders under `root` and stops all of them at `close()`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._started: list[RunningProxy] = []

    def new_cache_dir(self) -> Path:
        path = self.root / f"cache{len(list(self.root.glob('cache*')))}"
        path.mkdir(parents=True)
        return path

    def start(self, config: Mapping[str, Any]) -> RunningProxy:
        proxy = RunningProxy(config, self.root / f"proxy{len(self._started)}")
        self._started.append(proxy)
        return proxy.start()

    def close(self) -> None:
        for proxy in self._started:
            proxy.stop()
