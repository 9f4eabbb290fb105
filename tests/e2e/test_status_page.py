"""The status page at `/` in a real headless Chromium (Debian's `chromium`; skipped with the
reason where none is installed): upstreams and whether they answer, the cache, a download in
flight from a trickling upstream with its progress and rate, recent errors, profiles, client
rules and ready pip/uv lines. The screenshot is kept in `tests/artifacts/` (git-ignored).
The same slow download shows the progress lines the log gets for downloads over 10 s.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .catalogue import Wheelhouse
from .clients import file_urls, http_get, wait_until
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config
from .upstream_server import Throttle, UpstreamFactory, UpstreamServer

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# 2 MiB in 16 KiB chunks, 0.1 s apart: about 13 s, past the 10 s progress interval.
TRICKLE = Throttle(chunk_size=16 * 1024, delay=0.1)
BROWSER_TIMEOUT_S = 90


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless Chromium installed (Debian: apt-get install chromium)")


def _browse(browser: str, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",  # the tests may run as root in CI containers
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--window-size=1280,1500",
                *extra,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=BROWSER_TIMEOUT_S,
            check=False,
            env={**os.environ, "HOME": profile},
        )


class _Dom(HTMLParser):
    """Text per element id, and the rows (text per `tr` with a data- attribute) per section."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.rows: dict[str, list[str]] = {}
        self._section: str | None = None
        self._row: list[str] | None = None
        self._row_key = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section" and attributes.get("id"):
            self._section = attributes["id"]
            self.sections[self._section or ""] = ""
        if tag == "tr" and self._section is not None:
            self._row, self._row_key = [], self._section

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None:
            self.rows.setdefault(self._row_key, []).append(" ".join(self._row))
            self._row = None
        if tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if not text:
            return
        if self._section is not None:
            self.sections[self._section] += " " + text
        if self._row is not None:
            self._row.append(text)


def _closed_port() -> int:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port: int = placeholder.getsockname()[1]
    return port


@pytest.fixture
def trickling(make_upstream: UpstreamFactory) -> Iterator[UpstreamServer]:
    upstream = make_upstream()
    upstream.throttle = TRICKLE
    yield upstream


def _start(proxy: ProxyLauncher, upstream: UpstreamServer, dead_port: int) -> RunningProxy:
    config = proxy_config(
        proxy.new_cache_dir(),
        [upstream],
        profiles={"lab": {"hw": "cpu=x86_64_v3,cuda=12.8,sm=9.0"}},
        clients=[{"network": "10.20.0.0/16", "profile": "lab"}],
    )
    config["upstreams"].append({"name": "gone", "url": f"http://127.0.0.1:{dead_port}/simple/"})
    return proxy.start(config)


def test_status_page_in_chromium_with_a_download_in_flight(
    proxy: ProxyLauncher, trickling: UpstreamServer, wheelhouse: Wheelhouse
) -> None:
    browser = _chromium()
    dead_port = _closed_port()
    running = _start(proxy, trickling, dead_port)
    big = wheelhouse["big-1.0"]
    url = file_urls(running.page_url("big"))[big.filename]
    downloaded: list[int] = []
    client = threading.Thread(target=lambda: downloaded.append(len(http_get(url).body)))
    client.start()
    try:
        assert wait_until(lambda: 'class="download"' in http_get(running.url + "/").text)
        dump = _browse(browser, running.url + "/", "--dump-dom")
        assert dump.returncode == 0, dump.stderr[-2000:]
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "status-page.png"
        screenshot.unlink(missing_ok=True)
        shot = _browse(browser, running.url + "/", f"--screenshot={screenshot}")
        assert shot.returncode == 0, shot.stderr[-2000:]
    finally:
        client.join(timeout=120)
    assert downloaded == [big.size]

    dom = _Dom()
    dom.feed(dump.stdout)
    assert "<title>variant-proxy status</title>" in dump.stdout
    assert set(dom.sections) >= {"upstreams", "cache", "downloads", "profiles", "clients", "errors"}

    upstreams = dom.rows["upstreams"]
    (answering,) = [row for row in upstreams if row.startswith("upstream1 ")]
    assert trickling.index_url in answering and "answering" in answering
    (failing,) = [row for row in upstreams if row.startswith("gone ")]
    assert "failing" in failing and "connection refused" in failing
    assert f"127.0.0.1:{dead_port}" in failing

    cache = dom.sections["cache"]
    for label in ("stored", "limit", "files", "hit ratio", str(running.cache_dir)):
        assert label in cache, cache

    (download,) = [row for row in dom.rows["downloads"] if big.filename in row]
    assert "of 2.0 MiB" in download and "%" in download and "/s" in download, download

    profiles = dom.sections["profiles"]
    for line in (
        f"pip install --index-url {running.url}/simple/ PACKAGE",
        f"uv pip install --index-url {running.url}/simple/ PACKAGE",
        f"pip install --index-url {running.url}/p/lab/simple/ PACKAGE",
        f"uv pip install --index-url {running.url}/p/lab/simple/ PACKAGE",
        "hw = cpu=x86_64_v3,cuda=12.8,sm=9.0",
    ):
        assert line in profiles, profiles
    assert any("10.20.0.0/16" in row and "lab" in row for row in dom.rows["clients"])
    assert "connection refused" in dom.sections["errors"], dom.sections["errors"]

    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 20_000

    # The same download ran past 10 s: the log has its progress, with bytes and rate.
    progress = [r for r in running.log_records() if r.get("logger") == "downloads"]
    assert progress, running.log_text()[-3000:]
    assert progress[0]["file"] == big.filename and progress[0]["total"] == big.size
    assert 0 < progress[0]["bytes"] <= big.size and progress[0]["bytes_per_s"] > 0
    assert progress[0]["seconds"] >= 10


def test_status_page_without_chromium_still_answers(
    proxy: ProxyLauncher, make_upstream: UpstreamFactory
) -> None:
    # The page itself (no browser): HTML, not cached by intermediaries, nothing external.
    running = proxy.start(proxy_config(proxy.new_cache_dir(), [make_upstream()]))
    answer = http_get(running.url + "/")
    assert answer.status == 200
    assert (answer.header("Content-Type") or "").startswith("text/html")
    assert answer.header("Cache-Control") == "no-store"
    for external in ("http://", "https://", "//"):
        assert f'src="{external}' not in answer.text and f'href="{external}' not in answer.text
    assert "No download is running." in answer.text
