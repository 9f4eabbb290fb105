"""Security by default, end to end: upstream credentials, redirects, no open proxy, bad paths.

A private upstream on 127.0.0.1 demands a bearer token; its page links one file on its own
host, one on a separate file host (127.0.0.2) and one whose download redirects to a host
nobody allowed (127.0.0.3). Each server records the requests it saw, so the tests can tell
where the token went and which URLs the proxy fetched.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from aiohttp import web

from .builders import build_wheel
from .clients import http_get, installed_versions, pip_install
from .proxy_process import ProxyLauncher, RunningProxy

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-t0ken-value"
TOKEN_ENV = "VARIANT_PROXY_TEST_TOKEN"


class LoopbackApp:
    """An aiohttp application on one loopback address, in a thread, recording its requests."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 0
        self.seen: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self.app = web.Application(middlewares=[self._record])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @web.middleware
    async def _record(self, request: web.Request, handler: web.Handler) -> web.StreamResponse:
        self.seen.append((request.path, request.headers.get("Authorization")))
        return await handler(request)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LoopbackApp:
        self._thread.start()

        async def serve() -> None:
            self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, 0)
            await site.start()
            self.port = int(self._runner.addresses[0][1])

        asyncio.run_coroutine_threadsafe(serve(), self._loop).result(timeout=10)
        return self

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class PrivateIndex:
    """The upstream, its file host and a host no one allowed, with one wheel on each path."""

    def __init__(self, root: Path) -> None:
        self.local = build_wheel(root, "secretpkg", "1.0", build_marker="private")
        self.hosted = build_wheel(root, "hostedpkg", "1.0", build_marker="hosted")
        self.evil = build_wheel(root, "evilpkg", "1.0", build_marker="evil")
        self.index = LoopbackApp("127.0.0.1")
        self.files = LoopbackApp("127.0.0.2")
        self.elsewhere = LoopbackApp("127.0.0.3")
        self.index.app.router.add_get("/simple/{project}/", self._page)
        self.index.app.router.add_get("/own/{name}", self._own_file)
        self.index.app.router.add_get("/moved/{name}", self._moved)
        self.files.app.router.add_get("/f/{name}", self._hosted_file)
        self.elsewhere.app.router.add_get("/{name}", self._hosted_file)

    def start(self) -> PrivateIndex:
        for app in (self.index, self.files, self.elsewhere):
            app.start()
        return self

    def close(self) -> None:
        for app in (self.index, self.files, self.elsewhere):
            app.close()

    @property
    def index_url(self) -> str:
        return f"{self.index.url}/simple/"

    def _authorized(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            raise web.HTTPUnauthorized(text="token required\n")

    async def _page(self, request: web.Request) -> web.Response:
        self._authorized(request)
        links = {
            "secretpkg": (self.local, f"/own/{self.local.filename}"),
            "hostedpkg": (self.hosted, f"{self.files.url}/f/{self.hosted.filename}"),
            "evilpkg": (self.evil, f"/moved/{self.evil.filename}"),
        }
        project = request.match_info["project"]
        if project not in links:
            raise web.HTTPNotFound()
        dist, href = links[project]
        digest = hashlib.sha256(dist.data).hexdigest()
        body = f'<html><body><a href="{href}#sha256={digest}">{dist.filename}</a></body></html>'
        return web.Response(text=body, content_type="text/html")

    async def _own_file(self, request: web.Request) -> web.Response:
        self._authorized(request)
        return web.Response(body=self.local.data)

    async def _moved(self, request: web.Request) -> web.Response:
        self._authorized(request)
        raise web.HTTPFound(f"{self.elsewhere.url}/{request.match_info['name']}")

    async def _hosted_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        dist = next(d for d in (self.hosted, self.evil) if d.filename == name)
        return web.Response(body=dist.data)


@pytest.fixture(scope="module")
def private_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateIndex]:
    index = PrivateIndex(tmp_path_factory.mktemp("private")).start()
    yield index
    index.close()


@pytest.fixture(scope="module")
def served(private_index: PrivateIndex, module_proxy: ProxyLauncher) -> Iterator[RunningProxy]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN_ENV, TOKEN)
        running = module_proxy.start(
            {
                "server": {"host": "127.0.0.1", "port": 0, "log_format": "json"},
                "cache": {"dir": str(module_proxy.new_cache_dir())},
                "upstreams": [
                    {"name": "private", "url": private_index.index_url, "token_env": TOKEN_ENV}
                ],
            }
        )
    yield running
    running.stop()


def test_credentials_reach_the_upstream_and_nothing_else(
    served: RunningProxy, private_index: PrivateIndex, tmp_path: Path
) -> None:
    pip_install(served.index_url, ["secretpkg", "hostedpkg"], tmp_path)
    assert installed_versions(tmp_path) == {"secretpkg": "1.0", "hostedpkg": "1.0"}
    # The upstream got the token for its page and its own file ...
    assert (f"/own/{private_index.local.filename}", f"Bearer {TOKEN}") in private_index.index.seen
    # ... the separate file host got the file request, but never the token.
    hosted = [auth for path, auth in private_index.files.seen if path.endswith(".whl")]
    assert hosted == [None]
    # Nothing the proxy served or logged carries the token.
    for page in ("secretpkg", "hostedpkg"):
        for accept in ("text/html", "application/vnd.pypi.simple.v1+json"):
            body = http_get(served.page_url(page), headers={"Accept": accept}).text
            assert TOKEN not in body
            assert private_index.index.url not in body  # every link points at the proxy
    assert TOKEN not in served.log_text()


def test_a_redirect_to_a_host_nobody_allowed_is_not_followed(
    served: RunningProxy, private_index: PrivateIndex
) -> None:
    page = http_get(served.page_url("evilpkg"), headers={"Accept": "text/html"}).text
    href = page.split('href="', 1)[1].split("#", 1)[0]
    response = http_get(urljoin(served.page_url("evilpkg"), href))
    assert response.status == 502
    assert "127.0.0.3" in response.text and "not allowed" in response.text
    assert private_index.elsewhere.seen == []


def test_the_proxy_fetches_only_files_a_page_listed(
    served: RunningProxy, private_index: PrivateIndex
) -> None:
    before = len(private_index.index.seen)
    unlisted = "sha256-" + "0" * 64
    response = http_get(f"{served.url}/files/secretpkg/{unlisted}/secretpkg-1.0-py3-none-any.whl")
    assert response.status == 404
    # Only the page may have been (re)read, never a file URL made up by the client.
    assert all(path.startswith("/simple/") for path, _ in private_index.index.seen[before:])


@pytest.mark.parametrize(
    "path",
    [
        "/files/secretpkg/..%2F..%2Fetc/passwd",
        "/files/secretpkg/sha256-..%2F..%2F..%2Fetc%2Fpasswd/x.whl",
        "/files/..%2F..%2Findex.sqlite3/url-" + "0" * 40 + "/x.whl",
        "/simple/..%2F..%2Fetc%2Fpasswd/",
        "/p/..%2F..%2Fetc/simple/secretpkg/",
        "/variants-json/secretpkg/url-" + "0" * 40 + "/..%2F..%2Fx/v.json",
    ],
)
def test_path_traversal_is_refused_never_served(served: RunningProxy, path: str) -> None:
    response = http_get(served.url + path)
    assert response.status in (400, 404)
    assert "root:" not in response.text


def test_an_oversized_request_gets_400(served: RunningProxy) -> None:
    response = http_get(served.page_url("secretpkg"), headers={"X-Padding": "a" * 100_000})
    assert response.status == 400
    again = http_get(served.url + "/health")
    assert again.status == 200  # and the proxy is still serving
