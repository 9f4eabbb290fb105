"""Warm (cached) files: the validators, conditional answers, ranges and `HEAD` a static file
server gives, the body sent whole to fast and slow clients, and a client leaving mid-body
(no error, the access line says how it ended).

One proxy for the module: the tests read the cached 2 MiB `big-1.0` wheel, and a 12 MiB one
(more than the socket buffers hold) where a client pauses.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import pytest

from .builders import build_wheel
from .catalogue import Wheelhouse, publish_public
from .clients import file_urls, http_get, http_request, wait_until
from .fault_checks import assert_no_traceback
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config
from .upstream_server import UpstreamServer

pytestmark = pytest.mark.e2e


LARGE_FILE_BYTES = 12 * 1024 * 1024


@dataclass(frozen=True)
class WarmFile:
    proxy: RunningProxy
    url: str
    data: bytes
    large_url: str
    large_data: bytes

    def access_lines(self, path: str) -> list[dict[str, Any]]:
        return [
            record
            for record in self.proxy.log_records()
            if record.get("logger") == "access" and record.get("path") == path
        ]


def _cached_wheel_url(proxy: RunningProxy, project: str, data: bytes) -> str:
    urls = file_urls(proxy.page_url(project))
    url = next(url for name, url in urls.items() if name.endswith(".whl"))
    assert http_get(url).body == data  # cold: from the upstream, then kept
    assert wait_until(lambda: http_get(url).header("X-Cache") == "hit")
    return url


@pytest.fixture(scope="module")
def warm(
    module_proxy: ProxyLauncher, wheelhouse: Wheelhouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WarmFile]:
    large = build_wheel(
        tmp_path_factory.mktemp("large"), "largewarm", "1.0", payload_size=LARGE_FILE_BYTES
    )
    upstream = publish_public(UpstreamServer("json", absolute_urls=True).start(), wheelhouse)
    upstream.add_dist(large)
    running = module_proxy.start(proxy_config(module_proxy.new_cache_dir(), [upstream]))
    data = wheelhouse["big-1.0"].data
    yield WarmFile(
        running,
        _cached_wheel_url(running, "big", data),
        data,
        _cached_wheel_url(running, "largewarm", large.data),
        large.data,
    )
    upstream.close()


def test_a_warm_file_is_whole_with_its_validators(warm: WarmFile) -> None:
    answer = http_get(warm.url)
    assert answer.status == 200 and answer.body == warm.data
    assert answer.header("X-Cache") == "hit"
    assert answer.header("Content-Length") == str(len(warm.data))
    assert answer.header("Accept-Ranges") == "bytes"
    assert answer.header("Cache-Control") == "public, max-age=31536000, immutable"
    assert answer.header("Content-Type") == "application/octet-stream"
    etag = answer.header("ETag")
    assert etag is not None and etag.startswith('"') and etag.endswith('"')
    assert answer.header("Last-Modified") is not None
    assert http_get(warm.url).header("ETag") == etag  # stable from one answer to the next


def test_head_of_a_warm_file_has_the_headers_and_no_body(warm: WarmFile) -> None:
    answer = http_request(warm.url, method="HEAD")
    assert answer.status == 200 and answer.body == b""
    assert answer.header("Content-Length") == str(len(warm.data))
    assert answer.header("ETag") == http_get(warm.url).header("ETag")


def _validators(warm: WarmFile) -> tuple[str, str]:
    answer = http_request(warm.url, method="HEAD")
    etag, modified = answer.header("ETag"), answer.header("Last-Modified")
    assert etag is not None and modified is not None
    return etag, modified


def test_if_none_match_and_if_modified_since_give_304(warm: WarmFile) -> None:
    etag, modified = _validators(warm)
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"other", W/{etag}'},  # weak comparison
        {"If-None-Match": "*"},
        {"If-Modified-Since": modified},
    ):
        answer = http_get(warm.url, headers=headers)
        assert (answer.status, answer.body) == (304, b""), headers
        assert answer.header("ETag") == etag
    earlier = formatdate(time.time() - 10 * 365 * 86400, usegmt=True)
    for headers in ({"If-None-Match": '"other"'}, {"If-Modified-Since": earlier}):
        answer = http_get(warm.url, headers=headers)
        assert (answer.status, answer.body) == (200, warm.data), headers
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    both = http_get(warm.url, headers={"If-None-Match": '"other"', "If-Modified-Since": modified})
    assert both.status == 200


def test_if_match_that_fails_gives_412(warm: WarmFile) -> None:
    etag, modified = _validators(warm)
    assert http_get(warm.url, headers={"If-Match": '"other"'}).status == 412
    assert http_get(warm.url, headers={"If-Match": f"W/{etag}"}).status == 412  # strong only
    assert http_get(warm.url, headers={"If-Match": etag}).body == warm.data
    earlier = formatdate(time.time() - 10 * 365 * 86400, usegmt=True)
    assert http_get(warm.url, headers={"If-Unmodified-Since": earlier}).status == 412
    assert http_get(warm.url, headers={"If-Unmodified-Since": modified}).status == 200


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=10-19", 10, 20),
        ("bytes=-22", -22, None),
        ("bytes=2000000-", 2_000_000, None),
        ("bytes=0-", 0, None),
        ("bytes=100-99999999", 100, None),
    ],
)
def test_a_range_of_a_warm_file_is_a_correct_206(
    warm: WarmFile, spec: str, start: int, end: int | None
) -> None:
    size = len(warm.data)
    expected = warm.data[start:end]
    first = start if start >= 0 else size + start
    answer = http_get(warm.url, headers={"Range": spec})
    assert answer.status == 206
    assert answer.body == expected
    assert answer.header("Content-Range") == f"bytes {first}-{first + len(expected) - 1}/{size}"
    assert answer.header("Content-Length") == str(len(expected))


def test_a_range_past_the_end_is_416_and_a_malformed_one_gets_the_whole_file(
    warm: WarmFile,
) -> None:
    size = len(warm.data)
    past = http_get(warm.url, headers={"Range": f"bytes={size}-"})
    assert past.status == 416
    assert past.header("Content-Range") == f"bytes */{size}"
    for spec in ("bytes=5-1, 7-3", "bytes=-", "lines=1-2", "bytes=0-1,5-9"):
        answer = http_get(warm.url, headers={"Range": spec})
        assert (answer.status, answer.body) == (200, warm.data), spec


def test_if_range_sends_the_range_only_while_the_validator_matches(warm: WarmFile) -> None:
    etag, modified = _validators(warm)
    for validator in (etag, modified):
        answer = http_get(warm.url, headers={"Range": "bytes=0-9", "If-Range": validator})
        assert (answer.status, answer.body) == (206, warm.data[:10]), validator
    earlier = formatdate(time.time() - 10 * 365 * 86400, usegmt=True)
    for validator in ('"other"', f"W/{etag}", earlier):
        answer = http_get(warm.url, headers={"Range": "bytes=0-9", "If-Range": validator})
        assert (answer.status, answer.body) == (200, warm.data), validator


def _read_with_pauses(url: str, pause_at: tuple[int, ...], pause_s: float) -> bytes:
    """GET `url` on a socket with a small receive buffer, stopping to read for `pause_s`
    once the body has reached each of `pause_at` bytes: the proxy finds the socket full
    for longer than a fast client's. Returns the body."""
    parts = urlsplit(url)
    with socket.socket() as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        connection.settimeout(30)
        connection.connect((parts.hostname or "127.0.0.1", parts.port or 80))
        request = f"GET {parts.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        connection.sendall(request.encode())
        received = bytearray()
        pauses = list(pause_at)
        while chunk := connection.recv(256 * 1024):
            received += chunk
            if pauses and len(received) >= pauses[0]:
                pauses.pop(0)
                time.sleep(pause_s)
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head[:200]
    return body


def test_a_client_that_pauses_gets_every_byte(warm: WarmFile) -> None:
    # Each pause is longer than a sending thread waits: the event loop sends the rest.
    body = _read_with_pauses(warm.large_url, (1, 1024 * 1024, 6 * 1024 * 1024), pause_s=0.3)
    assert body == warm.large_data


def test_many_clients_at_once_all_get_every_byte(warm: WarmFile) -> None:
    # More clients than sending threads: the rest are sent by the event loop.
    with ThreadPoolExecutor(24) as pool:
        bodies = list(pool.map(lambda _: http_get(warm.large_url).body, range(24)))
    assert all(body == warm.large_data for body in bodies)


def _read_then_reset(url: str, nbytes: int) -> int:
    """GET `url` on a socket with a small receive buffer, read about `nbytes`, then drop the
    connection with a reset (a client killed mid-download). Returns the bytes read."""
    parts = urlsplit(url)
    received = 0
    with socket.socket() as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        connection.settimeout(30)
        connection.connect((parts.hostname or "127.0.0.1", parts.port or 80))
        connection.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        while received < nbytes and (chunk := connection.recv(65536)):
            received += len(chunk)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return received


def _settled_line_count(warm: WarmFile, path: str) -> int:
    """How many access lines `path` has once earlier requests' lines are all written: the
    log is written in batches, and under load the fixture's own GETs could land after the
    count and be taken for the request under test."""
    count = len(warm.access_lines(path))
    while True:
        time.sleep(0.2)  # ten times the log's longest batching delay
        now = len(warm.access_lines(path))
        if now == count:
            return count
        count = now


def test_a_client_leaving_mid_body_is_no_error(warm: WarmFile) -> None:
    # 12 MiB: more than the proxy's socket buffer holds, so most of it is never sent.
    path = urlsplit(warm.large_url).path
    before = _settled_line_count(warm, path)
    assert _read_then_reset(warm.large_url, 100_000) >= 100_000
    assert wait_until(lambda: len(warm.access_lines(path)) > before)
    line = warm.access_lines(path)[-1]
    assert line["status"] == 200 and line["cache"] == "hit"
    assert line.get("client_left") is True
    assert 100_000 <= line["bytes"] < len(warm.large_data)
    assert http_get(warm.large_url).body == warm.large_data  # and the proxy serves on
    assert_no_traceback(warm.proxy)
