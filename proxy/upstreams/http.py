"""The HTTP upstream: an `UpstreamSource` that fetches pages and files with aiohttp.

Credentials are attached only to requests for the upstream's own origin (scheme, host and
port), redirects are followed by hand and only to origins a page listed or hosts the operator
allowed (`proxy.urls.origins`), and URLs are logged without credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urljoin

import aiohttp

from proxy.config import UpstreamSettings
from proxy.simple.api import UPSTREAM_ACCEPT
from proxy.simple.names import NormalizedName
from proxy.upstreams import failures
from proxy.upstreams.source import (
    FileResponse,
    PageResponse,
    RangeAnswer,
    UpstreamError,
    UpstreamNotFound,
    redact,
)
from proxy.upstreams.zip_records import parse_content_range
from proxy.urls.origins import RedirectTargets, origin_of, same_origin

MAX_REDIRECTS = 5
# How much of a file's body aiohttp buffers before it stops reading the socket: at its
# 64 KiB default a fast upstream's reads pause and resume every few chunks.
FILE_READ_BUFFER_BYTES = 1024 * 1024
# At most this much of a file's body is handed on as one piece (`ResponseChunks`).
BATCH_BYTES = 1024 * 1024
USER_AGENT = "variant-proxy"


class ResponseChunks:
    """The body of an open upstream response as an async iterator of the buffers as they
    arrived (no joining copy); `aclose` releases it even when iteration never started (an
    async generator's `finally` would not run then)."""

    def __init__(self, response: aiohttp.ClientResponse, upstream: str, url: str) -> None:
        self._response = response
        self._content = response.content
        self._upstream = upstream
        self._url = url
        # A chunked body's pieces are read one by one (`readchunk` tracks their ends).
        chunked = "chunked" in response.headers.get("Transfer-Encoding", "").lower()
        self._batch_bytes = 0 if chunked else BATCH_BYTES

    def __aiter__(self) -> ResponseChunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            while True:
                data, end_of_http_chunk = await self._content.readchunk()
                if data:
                    return self._with_buffered(data)
                if not end_of_http_chunk:
                    break
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._response.close()
            raise UpstreamError(failures.broke_off(self._upstream, self._url, exc)) from None
        self._response.release()
        raise StopAsyncIteration

    def _with_buffered(self, data: bytes) -> bytes:
        """`data` and what else is buffered already, up to `BATCH_BYTES`, as one piece:
        when the loop falls behind a fast upstream, the buffers pile up, and each piece costs
        the download a hand-over to its threads and a wake-up of its waiters."""
        room = self._batch_bytes - len(data)
        more = self._content.read_nowait(room) if room > 0 else b""
        return data + more if more else data

    async def aclose(self) -> None:
        self._response.close()


class Upstream:
    """One configured HTTP(S) upstream index and the session used to reach it
    (an `UpstreamSource`)."""

    def __init__(
        self,
        settings: UpstreamSettings,
        session: aiohttp.ClientSession,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self._session = session
        self._auth = self._credentials(environ if environ is not None else os.environ)
        self._origin = origin_of(settings.url)
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.timeout, sock_read=settings.timeout
        )

    def _credentials(self, environ: Mapping[str, str]) -> dict[str, str]:
        s = self.settings
        if s.token_env and environ.get(s.token_env):
            return {"Authorization": f"Bearer {environ[s.token_env]}"}
        if s.username_env and environ.get(s.username_env):
            auth = aiohttp.BasicAuth(environ[s.username_env], environ.get(s.password_env or "", ""))
            return {"Authorization": auth.encode()}
        if s.basic_auth is not None:
            return {"Authorization": aiohttp.BasicAuth(*s.basic_auth).encode()}
        return {}

    @property
    def ttl(self) -> float:
        return self.settings.ttl

    def project_url(self, project: NormalizedName) -> str:
        return urljoin(self.settings.url, f"{project}/")

    @property
    def index_url(self) -> str:
        return self.settings.url

    def _headers_for(self, url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT}
        if same_origin(url, self._origin):
            headers.update(self._auth)
        if extra:
            headers.update(extra)
        return headers

    async def _request(
        self,
        url: str,
        headers: Mapping[str, str],
        allowed: RedirectTargets,
        read_bufsize: int | None = None,
    ) -> aiohttp.ClientResponse:
        """GET with redirects followed by hand, each hop checked against the allowed targets."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = await self._session.get(
                    current,
                    headers=self._headers_for(current, headers),
                    allow_redirects=False,
                    timeout=self._timeout,
                    read_bufsize=read_bufsize,
                )
            except TimeoutError:
                raise UpstreamError(
                    failures.unreachable(self.name, current, TimeoutError()), timed_out=True
                ) from None
            except aiohttp.ClientError as exc:
                raise UpstreamError(failures.unreachable(self.name, current, exc)) from None
            if response.status not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("Location", "")
            response.release()
            target = urljoin(current, location)
            if not allowed.allows(target):
                shown = redact(target)[:200]
                raise UpstreamError(
                    f"upstream {self.name} redirected to a place that is not allowed: {shown!r}"
                )
            current = target
        raise UpstreamError(f"upstream {self.name}: too many redirects for {redact(url)}")

    def _check_status(
        self, response: aiohttp.ClientResponse, url: str, expected: tuple[int, ...]
    ) -> None:
        """Raise UpstreamNotFound for 404/410 and UpstreamError for any other unexpected code."""
        if response.status in (404, 410):
            raise UpstreamNotFound(url)
        if response.status not in expected:
            raise UpstreamError(
                f"{failures.host_of(url)} (upstream {self.name}) answered {response.status}"
                f" for {redact(url)}",
                timed_out=response.status == 504,
            )

    def allowed_hosts(self, *urls: str) -> RedirectTargets:
        """Where a request for `urls` may be redirected (see `RedirectTargets`)."""
        return RedirectTargets.of((self.settings.url, *urls), self.settings.allowed_redirect_hosts)

    async def fetch_page(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> PageResponse:
        """Fetch a simple-API page (project or root), revalidating when validators are given."""
        headers = {"Accept": UPSTREAM_ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        response = await self._request(url, headers, self.allowed_hosts(url))
        async with response:
            if response.status == 304:
                return PageResponse(304, b"", "", str(response.url), etag, last_modified)
            self._check_status(response, url, (200,))
            try:
                body = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise UpstreamError(failures.broke_off(self.name, url, exc)) from None
            return PageResponse(
                200,
                body,
                response.headers.get("Content-Type", "text/html"),
                str(response.url),
                response.headers.get("ETag"),
                response.headers.get("Last-Modified"),
            )

    async def fetch_bytes(self, url: str, headers: Mapping[str, str] | None = None) -> bytes:
        """Fetch a small listed resource (a variants.json) whole."""
        response = await self._request(url, headers or {}, self.allowed_hosts(url))
        async with response:
            self._check_status(response, url, (200, 206))
            return await response.read()

    async def fetch_range(self, url: str, start: int | None, length: int) -> RangeAnswer:
        """GET part of a listed file. `start` None = the tail; a 200 answer is the whole file."""
        spec = f"bytes=-{length}" if start is None else f"bytes={start}-{start + length - 1}"
        response = await self._request(
            url, {"Range": spec, "Accept-Encoding": "identity"}, self.allowed_hosts(url)
        )
        async with response:
            self._check_status(response, url, (200, 206))
            body = await response.read()
            content_range = response.headers.get("Content-Range")
        if response.status == 200 or content_range is None:
            return RangeAnswer(body, 0, len(body), whole_file=True)
        parsed = parse_content_range(content_range)
        return RangeAnswer(body, parsed.start, parsed.total, whole_file=False)

    async def open_file(self, url: str) -> FileResponse:
        """Open a listed file for streaming; the caller drains `chunks`."""
        response = await self._request(
            url, {}, self.allowed_hosts(url), read_bufsize=FILE_READ_BUFFER_BYTES
        )
        try:
            self._check_status(response, url, (200,))
        except (UpstreamError, UpstreamNotFound):
            response.release()
            raise
        return FileResponse(response.content_length, ResponseChunks(response, self.name, url))
