"""Logs for operators (contract: "For people and operators", "Errors"): a timestamp on every
line in both formats, a reason on every 5xx, stale answer and upstream failure, the start-up
line, one line for two proxies on one cache, SIGTERM, no traceback for a client's mistake or
a client leaving, the access line's status and bytes as sent, and `/health` degraded.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .catalogue import Wheelhouse
from .clients import file_urls, http_get, read_then_disconnect, wait_until
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config
from .upstream_server import Throttle, UpstreamFactory

pytestmark = pytest.mark.e2e

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
MARKER = "---- start ----"


def _lines(proxy: RunningProxy) -> list[str]:
    return [line for line in proxy.log_text().splitlines() if line and line != MARKER]


def _access(proxy: RunningProxy, path: str) -> list[dict[str, Any]]:
    return [
        record
        for record in proxy.log_records()
        if record.get("logger") == "access" and record.get("path") == path
    ]


def _assert_no_traceback(proxy: RunningProxy) -> None:
    text = proxy.log_text()
    assert "Traceback" not in text, text
    assert "Unclosed" not in text, text
    for line in _lines(proxy):
        assert line.startswith("{"), f"not one JSON object per line: {line!r}"


def _file_url(proxy: RunningProxy, project: str) -> str:
    urls = file_urls(proxy.page_url(project))
    return next(url for name, url in urls.items() if name.endswith(".whl"))


def test_json_lines_all_have_timestamps(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory
) -> None:
    upstream = make_upstream()
    running = proxy.start(proxy_config(proxy.new_cache_dir(), [upstream]))
    assert http_get(running.page_url("demo-lib")).status == 200
    assert http_get(running.url + "/simple/no-such-project/").status == 404
    running.stop()
    records = running.log_records()
    assert len(records) == len(_lines(running)) >= 4
    for record in records:
        assert TIMESTAMP.fullmatch(record["ts"]), record
    (page,) = _access(running, "/simple/demo-lib/")
    assert page["status"] == 200 and page["route"] == "page" and page["bytes"] > 0


def test_text_format_is_one_readable_line_per_event(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory
) -> None:
    upstream = make_upstream()
    config = proxy_config(proxy.new_cache_dir(), [upstream])
    config["server"]["log_format"] = "text"
    running = proxy.start(config)
    assert http_get(running.page_url("demo-lib")).status == 200
    running.stop()
    lines = _lines(running)
    assert lines and not any(line.startswith("{") for line in lines)
    for line in lines:
        assert TIMESTAMP.match(line), line
    assert any(
        re.search(r" GET /simple/demo-lib/ 200 \d+B [\d.]+ms route=page", line) for line in lines
    ), lines
    assert any("serving on http://127.0.0.1:" in line for line in lines)
    assert any("SIGTERM received" in line for line in lines)


def test_start_up_line_names_url_redacted_upstreams_and_cache_dir(
    make_upstream: UpstreamFactory, tmp_path: Path
) -> None:
    # Credentials can come with pip's own index URL (the embedded default upstream).
    upstream = make_upstream()
    with_credentials = upstream.index_url.replace("http://", "http://operator:s3cr3t@")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    environment.update(PIP_INDEX_URL=with_credentials, PIP_CONFIG_FILE=os.devnull)
    command = [sys.executable, "-m", "proxy", "serve", "--port", "0", "--cache-dir", str(tmp_path)]
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        start = json.loads(process.stderr.readline())
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert TIMESTAMP.fullmatch(start["ts"])
    assert start["msg"] == f"variant-proxy: serving on {start['url']}"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", start["url"])
    assert start["upstreams"] == [f"default={upstream.index_url}"]
    assert start["cache_dir"] == str(tmp_path)
    assert "s3cr3t" not in json.dumps(start)


def test_502_reason_says_connection_refused_to_which_host(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory
) -> None:
    upstream = make_upstream()
    running = proxy.start(proxy_config(proxy.new_cache_dir(), [upstream]))
    upstream.stop()
    answer = http_get(running.page_url("demo-lib"))
    assert answer.status == 502
    reason = answer.text.strip()
    host = upstream.index_url.split("/")[2]
    assert "connection refused" in reason and host in reason, reason
    assert "upstream1" in reason and "Error" not in reason, reason
    assert wait_until(lambda: bool(_access(running, "/simple/demo-lib/")))
    (line,) = _access(running, "/simple/demo-lib/")
    assert line["status"] == 502 and line["reason"] == reason
    assert any(
        r.get("msg", "").startswith("upstream failure:") and host in r["msg"]
        for r in running.log_records()
    )
    running.stop()
    _assert_no_traceback(running)


def test_file_host_failure_names_the_file_host(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory
) -> None:
    # Absolute file URLs: the listed file lives on the upstream's host, which then goes away
    # after the page is cached. The 502 names that host, not only the upstream's name.
    upstream = make_upstream("json", absolute_urls=True)
    running = proxy.start(proxy_config(proxy.new_cache_dir(), [upstream]))
    url = _file_url(running, "demo-lib")
    upstream.stop()
    answer = http_get(url)
    assert answer.status == 502
    host = upstream.index_url.split("/")[2]
    assert f"cannot reach {host}" in answer.text and "connection refused" in answer.text


def test_stale_answer_is_logged_with_its_reason(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory
) -> None:
    upstream = make_upstream()
    config = proxy_config(proxy.new_cache_dir(), [upstream], upstream_settings={"ttl": 0})
    running = proxy.start(config)
    assert http_get(running.page_url("demo-lib")).status == 200
    upstream.down = True
    answer = http_get(running.page_url("demo-lib"))
    assert answer.status == 200 and answer.header("Warning")
    assert answer.header("Cache-Control") == "public, max-age=0"

    def stale_line() -> list[dict[str, Any]]:
        return [r for r in _access(running, "/simple/demo-lib/") if "reason" in r]

    assert wait_until(lambda: bool(stale_line()))
    (line,) = stale_line()
    assert line["reason"].startswith("stale: ") and "answered 503" in line["reason"], line
    warnings = [r for r in running.log_records() if r.get("stale")]
    assert warnings and "serving the cached page" in warnings[0]["msg"]


def test_two_proxies_on_one_cache_dir_one_line_and_exit_status(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory
) -> None:
    upstream = make_upstream()
    first = proxy.start(proxy_config(proxy.new_cache_dir(), [upstream]))
    second = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--config", str(first.config_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert "is in use by another variant-proxy process" in lines[0]
    assert str(first.cache_dir) in lines[0]
    assert first.running


def test_sigterm_is_logged(proxy: ProxyLauncher, make_upstream: UpstreamFactory) -> None:
    running = proxy.start(proxy_config(proxy.new_cache_dir(), [make_upstream()]))
    assert running.stop() == 0
    messages = [r.get("msg", "") for r in running.log_records()]
    assert "SIGTERM received: shutting down" in messages
    assert messages[-1] == "stopped"


def _raw_exchange(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /simple/ HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /simple/ HTTP/9.9\r\n\r\n",
    ],
    ids=["no-method", "bad-header", "long-path", "bad-version"],
)
def test_malformed_request_leaves_one_json_line_and_no_traceback(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory, request_bytes: bytes
) -> None:
    running = proxy.start(proxy_config(proxy.new_cache_dir(), [make_upstream()]))
    answer = _raw_exchange(running.url, request_bytes)
    assert re.match(rb"HTTP/1\.[01] 4\d\d ", answer), answer[:200]
    assert http_get(running.url + "/health").status == 200
    running.stop()
    _assert_no_traceback(running)
    malformed = [r for r in running.log_records() if r.get("route") == "malformed"]
    assert len(malformed) == 1 and malformed[0]["status"] >= 400 and malformed[0]["reason"]
    assert len(malformed[0]["reason"]) <= 200


def test_client_leaving_mid_download_is_no_error(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory, wheelhouse: Wheelhouse
) -> None:
    upstream = make_upstream()
    upstream.throttle = Throttle(chunk_size=64 * 1024, delay=0.05)
    running = proxy.start(proxy_config(proxy.new_cache_dir(), [upstream]))
    url = _file_url(running, "big")
    path = url.removeprefix(running.url)
    read_then_disconnect(url, 200_000)
    # The download goes on into the cache; the next client gets it from there.
    assert wait_until(lambda: http_get(url).header("X-Cache") == "hit", timeout=60)
    running.stop()
    _assert_no_traceback(running)
    lines = _access(running, path)
    assert all(line["status"] < 500 for line in lines), lines
    assert any(line.get("client_left") for line in lines), lines


def test_access_line_has_the_status_and_bytes_sent(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory, wheelhouse: Wheelhouse
) -> None:
    running = proxy.start(proxy_config(proxy.new_cache_dir(), [make_upstream()]))
    url = _file_url(running, "big")
    path = url.removeprefix(running.url)
    size = wheelhouse["big-1.0"].size
    assert len(http_get(url).body) == size  # cold: from the upstream
    # The store keeps the file once verified, just after the answer ends.
    assert wait_until(lambda: http_get(url).header("X-Cache") == "hit")
    ranged = http_get(url, headers={"Range": "bytes=0-99"})
    assert ranged.status == 206 and len(ranged.body) == 100
    assert wait_until(lambda: _access(running, path)[-1]["status"] == 206)
    cold, *whole, partial = _access(running, path)
    assert (cold["status"], cold["cache"], cold["bytes"]) == (200, "miss", size)
    assert whole[-1]["cache"] == "hit"
    assert all((line["status"], line["bytes"]) == (200, size) for line in whole), whole
    assert (partial["status"], partial["cache"], partial["bytes"]) == (206, "hit", 100)


def test_root_list_says_miss_when_cold_then_hit(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory
) -> None:
    running = proxy.start(proxy_config(proxy.new_cache_dir(), [make_upstream()]))
    assert http_get(running.url + "/simple/").header("X-Cache") == "miss"
    assert http_get(running.url + "/simple/").header("X-Cache") == "hit"


def test_health_is_degraded_with_the_reason_while_an_upstream_is_unreachable(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory
) -> None:
    upstream = make_upstream()
    running = proxy.start(proxy_config(proxy.new_cache_dir(), [upstream]))
    healthy = http_get(running.url + "/health")
    assert healthy.status == 200 and healthy.json()["status"] == "ok"
    upstream.stop()
    http_get(running.page_url("demo-lib"))  # a request that meets the refusal
    degraded = http_get(running.url + "/health")
    assert degraded.status == 200
    body = degraded.json()
    assert body["status"] == "degraded"
    (reason,) = body["reasons"]
    assert reason.startswith("upstream upstream1: ") and "connection refused" in reason


def test_health_probes_an_upstream_nobody_asked(proxy: ProxyLauncher, tmp_path: Path) -> None:
    # Nothing listens on this port: the health check finds out without any client request.
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    config = proxy_config(proxy.new_cache_dir(), [])
    config["upstreams"] = [{"name": "gone", "url": f"http://127.0.0.1:{port}/simple/"}]
    running = proxy.start(config)
    body = http_get(running.url + "/health").json()
    assert body["status"] == "degraded"
    assert body["reasons"] == [f"upstream gone: cannot reach 127.0.0.1:{port}: connection refused"]
