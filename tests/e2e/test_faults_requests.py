"""Fault suite, client side: hostile requests, SSRF by redirect, credentials to another origin,
HEAD and Range on files not cached yet, and routes asked for the wrong kind of file.
Every test ends with `assert_survived` (see `fault_checks`).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from .builders import BuiltDist
from .clients import http_get, http_request, wait_until
from .fault_checks import (
    PROJECT,
    assert_no_traceback,
    assert_survived,
    build_files,
    file_url,
    host,
    start_proxy,
    stored_hashes,
)
from .fault_upstream import Fault, FaultUpstream
from .proxy_process import ProxyLauncher, RunningProxy

pytestmark = pytest.mark.e2e

TOKEN = "f4ult-t0ken-value"
TOKEN_ENV = "VARIANT_PROXY_FAULT_TOKEN"
HOSTILE_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltDist]:
    return build_files(tmp_path_factory.mktemp("faulty"), {"1.0": 300_000, "2.0": 20_000})


@pytest.fixture
def upstream(dists: dict[str, BuiltDist]) -> Iterator[FaultUpstream]:
    with FaultUpstream() as server:
        host(server, dists.values())
        yield server


@pytest.fixture
def elsewhere() -> Iterator[FaultUpstream]:
    """A loopback host no page lists: nothing may ever reach it."""
    with FaultUpstream("127.0.0.9") as server:
        yield server


@pytest.fixture
def other_port() -> Iterator[FaultUpstream]:
    """The upstream's host on another port: another origin."""
    with FaultUpstream("127.0.0.1") as server:
        yield server


# ---- hostile requests ---------------------------------------------------------------------

HOSTILE_PATHS = [
    "/files/faulty/..%2F..%2Fetc/passwd",
    "/files/faulty/sha256-..%2F..%2Fstore/x.whl",
    "/files/..%2F..%2Findex.sqlite3/url-" + "0" * 40 + "/x.whl",
    "/files/faulty/sha256-%00/x.whl",
    "/files/faulty/url-" + "0" * 40 + "/x%00.whl",
    "/../../etc/passwd",
    "/simple/../../etc/passwd",
    "/simple/%2e%2e/%2e%2e/etc/passwd/",
    "/simple/%252e%252e%252f/",
    "/simple/faulty%00/",
    "/simple/fa%00ulty/",
    "/simple/faulty/..;/",
    "/simple/faulty\\..\\..\\x/",
    "//etc/passwd",
    "/%ff%fe/",
    "/p/..%2F..%2Fetc/simple/faulty/",
    "/p/%00/simple/faulty/",
    "/hw/cpu=%00/simple/faulty/",
    "/hw/cpu=x86_64_v9/simple/faulty/",
    "/hw/" + "x" * 5000 + "/simple/faulty/",
    "/native/simple/..%2f..%2f/",
    "/variants-json/faulty/url-" + "0" * 40 + "/..%2F..%2Fx/v.json",
    "/variants-json/faulty/sha256-" + "0" * 64 + "/a+b/x-1.0-variants.json",
    "/simple/faulty/?format=" + "a" * 3000,
    "/simple/faulty/?format=text/x-nothing",
    "/simple/" + "a" * 100_000 + "/",
    "/admin/invalidate/" + "a" * 5000,
    "/metrics/../health",
]
HOSTILE_METHODS = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "OPTIONS",
    "PATCH",
    "TRACE",
    "BREW",
    "PROPFIND",
    "get",
    "G\x00T",
]
HOSTILE_HEADERS: list[dict[str, str]] = [
    {},
    {"Accept": "\x01\x02"},
    {"Accept": "text/html;q=abc, */*;q=-1"},
    {"Accept": ", " * 2000},
    {"Accept": "application/vnd.pypi.simple.v9+json"},
    {"Variant-Properties": "a::b"},
    {"Variant-Properties": "x" * 20_000},
    {"Variant-Properties": "a :: b :: " + "c" * 20_000},
    {"Variant-Properties": ",,,"},
    {"Variant-Hardware": "cpu=zzz"},
    {"Variant-Hardware": "sm=99999,cuda=-1"},
    {"Variant-Hardware": "prop=" + ":" * 3000},
    {"X-Big": "a" * 100_000},
    {"Range": "bytes=-"},
    {"Range": "bytes=999999999-"},
    {"Range": "bytes=5-1, 7-3"},
    {"If-None-Match": "*" * 5000},
    {"Content-Length": "-1"},
    {"Transfer-Encoding": "chunked, identity"},
    {"Host": "\x00"},
]


def _raw_requests(upstream: FaultUpstream, elsewhere: FaultUpstream) -> list[bytes]:
    """At least 1,000 hostile requests, as raw bytes (no client library would send them)."""
    requests = []
    for path, method in itertools.product(HOSTILE_PATHS, HOSTILE_METHODS):
        requests.append(f"{method} {path} HTTP/1.1\r\nHost: proxy\r\n\r\n".encode())
    page_paths = ["/simple/faulty/", "/native/simple/faulty/", "/simple/", *HOSTILE_PATHS]
    for path, headers in itertools.product(page_paths, HOSTILE_HEADERS):
        lines = "".join(f"{k}: {v}\r\n" for k, v in {"Host": "proxy", **headers}.items())
        requests.append(f"GET {path} HTTP/1.1\r\n{lines}\r\n".encode("latin-1"))
    for target in (elsewhere.base_url, upstream.base_url, "http://index.example"):
        for path in ("/simple/faulty/", "/files/x.whl", "/"):
            requests.append(f"GET {target}{path} HTTP/1.1\r\nHost: proxy\r\n\r\n".encode())
    requests += [
        f"CONNECT 127.0.0.9:{elsewhere.port} HTTP/1.1\r\nHost: 127.0.0.9\r\n\r\n".encode(),
        b"GET /simple/ HTTP/9.9\r\n\r\n",
        b"GET /simple/\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
        b"GET\r\n\r\n",
        b"GET /simple/ HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET /simple/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
        b"POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n" + b"a" * 1000,
    ] * 8
    return requests


def _status_of(raw: bytes, port: int) -> int | None:
    """The status the proxy answered, or None when it closed the connection without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=HOSTILE_TIMEOUT_S) as connection:
        try:
            connection.sendall(raw)
            connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # it may close on us mid-request (too large): still an answer
        head = b""
        try:
            while b"\r\n" not in head:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                head += chunk
        except ConnectionResetError:
            return None
    if not head.startswith(b"HTTP/"):
        return None
    return int(head.split(b" ", 2)[1])


def test_a_thousand_hostile_requests_are_refused_quickly_and_never_break_the_proxy(
    upstream: FaultUpstream,
    elsewhere: FaultUpstream,
    proxy: ProxyLauncher,
    dists: dict[str, BuiltDist],
) -> None:
    running = start_proxy(proxy, upstream)
    port = int(running.url.rsplit(":", 1)[1])
    requests = _raw_requests(upstream, elsewhere)
    assert len(requests) >= 1000
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda raw: _status_of(raw, port), requests))
    server_errors = [
        (request[:120], status)
        for request, status in zip(requests, statuses, strict=True)
        if status is not None and status >= 500
    ]
    assert server_errors == []
    assert elsewhere.seen() == []
    assert all(request.path.startswith("/simple/") for request in upstream.seen())
    assert stored_hashes(running) == set()
    # The log's side (no traceback for a malformed request) is checked by the next test.
    assert_survived(running, dists.values(), check_log=False)


def test_malformed_requests_leave_no_traceback_in_the_log(
    upstream: FaultUpstream, elsewhere: FaultUpstream, proxy: ProxyLauncher
) -> None:
    running = start_proxy(proxy, upstream)
    port = int(running.url.rsplit(":", 1)[1])
    malformed = [
        raw for raw in _raw_requests(upstream, elsewhere) if b"HTTP/1.1\r\nHost" not in raw
    ]
    for raw in malformed:
        _status_of(raw, port)
    assert http_get(f"{running.url}/health").status == 200
    assert_no_traceback(running)


# ---- where the proxy sends requests and credentials -----------------------------------------


def test_redirects_to_hosts_or_ports_no_page_lists_are_not_followed(
    upstream: FaultUpstream,
    elsewhere: FaultUpstream,
    other_port: FaultUpstream,
    proxy: ProxyLauncher,
    dists: dict[str, BuiltDist],
) -> None:
    running = start_proxy(proxy, upstream)
    dist = dists["2.0"]
    targets = [
        f"{elsewhere.base_url}/files/{dist.filename}",
        f"{other_port.base_url}/files/{dist.filename}",
        "file:///etc/passwd",
        f"http://[::1]:{upstream.port}/files/{dist.filename}",
    ]
    for target in targets:
        upstream.set_fault(dist.filename, Fault.REDIRECT, redirect_to=target)
        response = http_get(file_url(running, dist))
        assert response.status == 502, (target, response.status)
        assert "not allowed" in response.text
    assert elsewhere.seen() == [] and other_port.seen() == []
    assert stored_hashes(running) == set()
    assert_survived(running, dists.values())


def test_credentials_go_to_the_upstream_origin_only_never_another_port(
    upstream: FaultUpstream,
    other_port: FaultUpstream,
    proxy: ProxyLauncher,
    dists: dict[str, BuiltDist],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere_dist = dists["2.0"]
    other_port.add_file(PROJECT, elsewhere_dist.filename, elsewhere_dist.data)
    listed = f"{other_port.base_url}/files/{elsewhere_dist.filename}"
    upstream.add_file(PROJECT, elsewhere_dist.filename, elsewhere_dist.data, url=listed)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    running = start_proxy(proxy, upstream, upstream_settings={"token_env": TOKEN_ENV})
    for dist in dists.values():
        response = http_get(file_url(running, dist))
        assert response.status == 200 and response.body == dist.data
    own = [r for r in upstream.seen() if r.method == "GET"]
    assert own and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in own)
    assert [r.headers.get("authorization") for r in other_port.seen()] == [None]
    assert TOKEN not in running.log_text()
    assert_survived(running, dists.values())


# ---- HEAD, Range, and the wrong kind of file ------------------------------------------------


def test_head_on_an_uncached_file_downloads_nothing(
    upstream: FaultUpstream, proxy: ProxyLauncher, dists: dict[str, BuiltDist]
) -> None:
    running = start_proxy(proxy, upstream)
    dist = dists["1.0"]
    response = http_request(file_url(running, dist), method="HEAD")
    assert response.status == 200
    assert response.header("Content-Length") == str(len(dist.data))
    assert response.header("Accept-Ranges") == "bytes"
    assert upstream.gets(upstream.file_path(dist.filename)) == 0
    http_get(file_url(running, dist))
    assert wait_until(lambda: dist.sha256 in stored_hashes(running))
    cached = http_request(file_url(running, dist), method="HEAD")
    assert cached.header("Accept-Ranges") == "bytes"
    assert cached.header("Content-Length") == str(len(dist.data))
    assert_survived(running, dists.values())


@pytest.mark.parametrize("spec", ["bytes=1000-1999", "bytes=-500", "bytes=299000-"])
def test_a_range_of_an_uncached_file_is_a_correct_206(
    spec: str, upstream: FaultUpstream, proxy: ProxyLauncher, dists: dict[str, BuiltDist]
) -> None:
    running = start_proxy(proxy, upstream)
    dist = dists["1.0"]
    size = len(dist.data)
    response = http_get(file_url(running, dist), headers={"Range": spec})
    first, _, last = spec.removeprefix("bytes=").partition("-")
    start = size - int(last) if first == "" else int(first)
    end = int(last) + 1 if first and last else size
    assert response.status == 206
    assert response.header("Content-Range") == f"bytes {start}-{end - 1}/{size}"
    assert response.body == dist.data[start:end]
    # The one download behind it completes into the cache.
    assert wait_until(lambda: dist.sha256 in stored_hashes(running))
    assert upstream.gets(upstream.file_path(dist.filename)) == 1
    assert_survived(running, dists.values())


def test_a_wheel_asked_for_as_a_variants_json_is_404_and_fetched_nowhere(
    upstream: FaultUpstream, proxy: ProxyLauncher, dists: dict[str, BuiltDist]
) -> None:
    running = start_proxy(proxy, upstream)
    dist = dists["1.0"]
    url = f"{running.url}/variants-json/{PROJECT}/sha256-{dist.sha256}/x/{dist.filename}"
    for _ in range(3):
        assert http_get(url).status == 404
    assert upstream.gets(upstream.file_path(dist.filename)) == 0
    assert_survived(running, dists.values())


def _page_status(running: RunningProxy, headers: dict[str, str]) -> tuple[int, str]:
    response = http_get(f"{running.url}/simple/{PROJECT}/", headers=headers)
    return response.status, response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Variant-Properties": "x" * 6_000},
        {"Variant-Properties": "A :: b :: " + "c" * 6_000},
        {"Variant-Hardware": "cpu=" + "v" * 6_000},
    ],
    ids=["item", "value", "spec"],
)
def test_a_bad_fingerprint_is_echoed_at_most_200_characters(
    headers: dict[str, str], upstream: FaultUpstream, proxy: ProxyLauncher
) -> None:
    running = start_proxy(proxy, upstream)
    status, text = _page_status(running, headers)
    assert status == 400
    longest_run = max(len(run) for run in text.replace(" ", "'").split("'"))
    assert longest_run <= 200, text[:400]
    assert len(text) < 600
