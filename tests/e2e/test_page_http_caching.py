"""HTTP caching and negotiation of pages (contract: "For people and operators"): ETag and
304, `Cache-Control: max-age` = the page's remaining freshness (`private` kept where the page
depends on the client's address), gzip when accepted, the root list too; what each Accept
header gets, and a 400 naming a bad `?format=`. Real pip with its HTTP cache revalidates.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator

import pytest

from .clients import http_get
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config
from .upstream_server import UpstreamServer

pytestmark = pytest.mark.e2e

TTL = 600
JSON_V1 = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def served(module_proxy: ProxyLauncher, upstream: UpstreamServer) -> Iterator[RunningProxy]:
    config = proxy_config(
        module_proxy.new_cache_dir(),
        [upstream],
        cache={"index_ttl": TTL},
        upstream_settings={"ttl": TTL},
    )
    running = module_proxy.start(config)
    yield running
    running.stop()


def _max_age(cache_control: str | None) -> int:
    assert cache_control is not None
    match = re.search(r"max-age=(\d+)", cache_control)
    assert match, cache_control
    return int(match.group(1))


@pytest.mark.parametrize("path", ["/simple/demo-lib/", "/simple/"])
def test_etag_and_304(served: RunningProxy, path: str) -> None:
    first = http_get(served.url + path)
    etag = first.header("ETag")
    assert first.status == 200 and etag
    again = http_get(served.url + path, headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    assert again.header("ETag") == etag
    assert again.header("Cache-Control") == first.header("Cache-Control")
    other = http_get(served.url + path, headers={"If-None-Match": '"something-else"'})
    assert other.status == 200 and other.body == first.body
    # Another representation of the page has another ETag.
    as_json = http_get(served.url + path, headers={"Accept": JSON_V1})
    assert as_json.header("ETag") not in (None, etag)


@pytest.mark.parametrize("path", ["/simple/demo-lib/", "/simple/"])
def test_max_age_is_the_remaining_freshness(served: RunningProxy, path: str) -> None:
    answer = http_get(served.url + path)
    cache_control = answer.header("Cache-Control")
    assert cache_control is not None and cache_control.startswith("public, ")
    assert 0 < _max_age(cache_control) <= TTL


@pytest.mark.parametrize("path", ["/simple/demo-lib/", "/simple/"])
def test_gzip_when_accepted(served: RunningProxy, path: str) -> None:
    plain = http_get(served.url + path)
    assert plain.header("Content-Encoding") is None
    packed = http_get(served.url + path, headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.header("Content-Encoding") == "gzip"
    assert gzip.decompress(packed.body) == plain.body
    assert "Accept-Encoding" in (packed.header("Vary") or "")
    assert packed.header("ETag") == plain.header("ETag")
    # The compressed form is made once per page version: the same bytes every time.
    assert http_get(served.url + path, headers={"Accept-Encoding": "gzip"}).body == packed.body
    refused = http_get(served.url + path, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert refused.header("Content-Encoding") is None


def test_private_pages_keep_private(proxy: ProxyLauncher, upstream: UpstreamServer) -> None:
    config = proxy_config(
        proxy.new_cache_dir(),
        [upstream],
        profiles={"lab": {"hw": "cpu=x86_64_v3"}},
        clients=[{"network": "127.0.0.0/8", "profile": "lab"}],
    )
    running = proxy.start(config)
    answer = http_get(running.page_url("demo-lib"))
    cache_control = answer.header("Cache-Control") or ""
    assert cache_control.startswith("private, max-age="), cache_control


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "text/html"),
        ("*/*", "text/html"),
        ("text/html", "text/html"),
        ("application/json", "text/html"),
        ("image/png", "text/html"),
        ("text/html, */*;q=0.8", "text/html"),
        (JSON_V1, JSON_V1),
        (f"{JSON_V1}, text/html;q=0.1", JSON_V1),
    ],
)
def test_negotiation_follows_the_public_index(
    served: RunningProxy, accept: str | None, content_type: str
) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    answer = http_get(served.page_url("demo-lib"), headers=headers)
    assert answer.status == 200
    assert (answer.header("Content-Type") or "").split(";")[0] == content_type


def test_bad_format_parameter_is_400_naming_it(served: RunningProxy) -> None:
    answer = http_get(served.page_url("demo-lib") + "?format=bogus")
    assert answer.status == 400
    assert "'bogus'" in answer.text and "format" in answer.text
    good = http_get(served.page_url("demo-lib") + f"?format={JSON_V1}")
    assert good.status == 200 and good.header("Content-Type") == JSON_V1
