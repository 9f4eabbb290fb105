"""A real simple-API upstream index on loopback for the e2e tests, with knobs to make it misbehave.

`UpstreamServer` runs aiohttp in a background thread with its own event loop, so a test can
start it, point a proxy or installer at it, flip its knobs and read its request counters from
the test thread. It serves the files it was given for several projects, either as PEP 503
HTML only (`mode="html"`, relative hrefs, `#sha256=` fragments, `data-*` attributes) or as
PEP 691 JSON only (`mode="json"`, relative or absolute URLs, PEP 700 fields), whatever the
client's Accept header says. Pages and files carry ETag and Last-Modified and are answered
304 to a matching conditional request. Files honour a single `Range`.

Knobs: `down` (503 for everything), `stop()`/`start()` (connection refused, same port),
`corrupt(filename)` (bytes that do not match the listed hash), `throttle` (stream files in
small chunks with pauses), per-file `yanked` and `requires_python`.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.utils import formatdate, parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

from aiohttp import web
from packaging.version import InvalidVersion, Version

from .builders import BuiltDist, normalize

Mode = Literal["html", "json"]

HTML_CONTENT_TYPE = "text/html"
JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
# PEP 700 upload-time format; every file gets the same time unless told otherwise.
DEFAULT_UPLOAD_TIME = "2024-01-02T03:04:05.000000Z"


@dataclass(frozen=True)
class Throttle:
    """Stream file bodies `chunk_size` bytes at a time with `delay` seconds between chunks."""

    chunk_size: int = 32 * 1024
    delay: float = 0.02


@dataclass
class HostedFile:
    """One file of a project as this upstream lists and serves it."""

    project: str
    filename: str
    data: bytes
    version: str | None = None
    requires_python: str | None = None
    yanked: bool | str = False
    # PEP 658 metadata bytes; None when the page must not advertise a `.metadata` file.
    metadata: bytes | None = None
    upload_time: str = DEFAULT_UPLOAD_TIME
    # Bytes served instead of `data` while the file is corrupted.
    corrupted: bytes | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def served_bytes(self) -> bytes:
        return self.corrupted if self.corrupted is not None else self.data


@dataclass
class _Counters:
    requests: Counter[str] = field(default_factory=Counter)
    completed: Counter[str] = field(default_factory=Counter)
    not_modified: Counter[str] = field(default_factory=Counter)
    # (method, path_qs, headers) of every request, in arrival order.
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


def _version_key(text: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)


class UpstreamServer:
    """A PEP 503 or PEP 691 index on 127.0.0.1, running in its own thread and event loop."""

    def __init__(self, mode: Mode = "html", *, absolute_urls: bool = False) -> None:
        self.mode: Mode = mode
        self.absolute_urls = absolute_urls
        # Knobs a test may flip at any time.
        self.down = False
        self.throttle: Throttle | None = None
        self.port = 0
        self._files: dict[str, dict[str, HostedFile]] = {}
        self._modified: dict[str, float] = {}
        self._started_at = time.time()
        self._lock = threading.Lock()
        self._counters = _Counters()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="upstream-server", daemon=True
        )
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> UpstreamServer:
        """Listen (again) on the server's port; the first start picks a free port."""
        if not self._thread.is_alive():
            self._thread.start()
        if self._runner is None:
            self._run(self._start_site())
        return self

    def stop(self) -> None:
        """Stop listening, so connections are refused; `start()` listens again on the port."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            self._run(runner.cleanup())

    def close(self) -> None:
        self.stop()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> UpstreamServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    async def _start_site(self) -> None:
        app = web.Application(middlewares=[self._count_and_fail])
        app.router.add_get("/simple/", self._root_page)
        app.router.add_get("/simple/{project}/", self._project_page)
        app.router.add_get("/simple/{project}", self._add_slash)
        app.router.add_get("/files/{project}/{filename}", self._file)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = int(runner.addresses[0][1])
        self._runner = runner

    # ---- content ---------------------------------------------------------------------

    def add_dist(
        self,
        dist: BuiltDist,
        *,
        yanked: bool | str = False,
        requires_python: str | None = None,
        with_metadata: bool | None = None,
        project: str | None = None,
    ) -> HostedFile:
        """Host a built file. `requires_python` (default: the dist's own) is what the page
        states; `with_metadata` (default: for wheels) advertises and serves its `.metadata`."""
        if with_metadata is None:
            with_metadata = dist.kind == "wheel"
        return self.add_file(
            project or dist.project,
            dist.filename,
            dist.data,
            version=dist.version,
            requires_python=requires_python or dist.requires_python,
            yanked=yanked,
            metadata=dist.metadata if with_metadata else None,
        )

    def add_file(
        self,
        project: str,
        filename: str,
        data: bytes,
        *,
        version: str | None = None,
        requires_python: str | None = None,
        yanked: bool | str = False,
        metadata: bytes | None = None,
    ) -> HostedFile:
        """Host raw bytes under `filename` in `project` (e.g. a `-variants.json` file)."""
        name = normalize(project)
        hosted = HostedFile(
            project=name,
            filename=filename,
            data=data,
            version=version,
            requires_python=requires_python,
            yanked=yanked,
            metadata=metadata,
        )
        with self._lock:
            self._files.setdefault(name, {})[filename] = hosted
            self._touch(name)
        return hosted

    def remove(self, filename: str) -> None:
        with self._lock:
            hosted = self._find(filename)
            del self._files[hosted.project][filename]
            self._touch(hosted.project)

    def set_yanked(self, filename: str, yanked: bool | str) -> None:
        with self._lock:
            hosted = self._find(filename)
            hosted.yanked = yanked
            self._touch(hosted.project)

    def corrupt(self, filename: str) -> bytes:
        """Serve bytes that differ from the listed hash (same length); returns those bytes."""
        with self._lock:
            hosted = self._find(filename)
            damaged = bytearray(hosted.data)
            damaged[len(damaged) // 2] ^= 0xFF
            hosted.corrupted = bytes(damaged)
            return hosted.corrupted

    def repair(self, filename: str) -> None:
        with self._lock:
            self._find(filename).corrupted = None

    def hosted(self, filename: str) -> HostedFile:
        with self._lock:
            return self._find(filename)

    def _find(self, filename: str) -> HostedFile:
        for files in self._files.values():
            if filename in files:
                return files[filename]
        raise KeyError(f"upstream hosts no file {filename!r}")

    def _touch(self, project: str) -> None:
        # Last-Modified has one-second resolution; keep every change visible to it.
        previous = self._modified.get(project, self._started_at)
        self._modified[project] = max(time.time(), previous + 1)

    # ---- addresses and counters ------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def index_url(self) -> str:
        return f"{self.base_url}/simple/"

    @staticmethod
    def page_path(project: str) -> str:
        return f"/simple/{normalize(project)}/"

    def file_path(self, filename: str) -> str:
        return f"/files/{self.hosted(filename).project}/{filename}"

    def metadata_path(self, filename: str) -> str:
        return self.file_path(filename) + ".metadata"

    def count(self, path: str) -> int:
        """Requests received for `path` (any method, any answer, including 503s and 304s)."""
        with self._lock:
            return self._counters.requests[path]

    def count_where(self, predicate: Callable[[str], bool]) -> int:
        with self._lock:
            return sum(n for path, n in self._counters.requests.items() if predicate(path))

    def completed(self, path: str) -> int:
        """Responses for `path` whose whole body was written to the client."""
        with self._lock:
            return self._counters.completed[path]

    def not_modified(self, path: str) -> int:
        with self._lock:
            return self._counters.not_modified[path]

    def request_log(self) -> list[tuple[str, str, dict[str, str]]]:
        with self._lock:
            return list(self._counters.log)

    def wait_completed(self, path: str, at_least: int, timeout: float = 30.0) -> bool:
        """Wait until `completed(path) >= at_least`; False if the timeout passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.completed(path) >= at_least:
                return True
            time.sleep(0.02)
        return self.completed(path) >= at_least

    # ---- HTTP ------------------------------------------------------------------------

    @web.middleware
    async def _count_and_fail(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Any],
    ) -> web.StreamResponse:
        with self._lock:
            self._counters.requests[request.path] += 1
            self._counters.log.append((request.method, request.path_qs, dict(request.headers)))
        if self.down:
            return web.Response(status=503, text="upstream down (test knob)\n")
        response: web.StreamResponse = await handler(request)
        return response

    async def _add_slash(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(f"/simple/{request.match_info['project']}/")

    async def _root_page(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            names = sorted(name for name, files in self._files.items() if files)
            modified = max(self._modified.values(), default=self._started_at)
        if self.mode == "json":
            document = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
            body = json.dumps(document).encode()
        else:
            links = "".join(f'<a href="{quote(n)}/">{html.escape(n)}</a><br/>\n' for n in names)
            body = _html_document("Simple index", links)
        return self._page_response(request, body, modified)

    async def _project_page(self, request: web.Request) -> web.StreamResponse:
        requested = request.match_info["project"]
        name = normalize(requested)
        if requested != name:
            raise web.HTTPMovedPermanently(f"/simple/{name}/")
        with self._lock:
            files = [replace(hosted) for hosted in self._files.get(name, {}).values()]
            modified = self._modified.get(name, self._started_at)
        if not files:
            raise web.HTTPNotFound(text=f"no project {name!r}\n")
        body = (
            self._render_json(name, files)
            if self.mode == "json"
            else self._render_html(name, files)
        )
        return self._page_response(request, body, modified)

    def _file_url(self, hosted: HostedFile) -> str:
        relative = f"../../files/{hosted.project}/{quote(hosted.filename)}"
        if self.mode == "json" and self.absolute_urls:
            return f"{self.base_url}/files/{hosted.project}/{quote(hosted.filename)}"
        return relative

    def _render_html(self, name: str, files: list[HostedFile]) -> bytes:
        anchors = []
        for hosted in files:
            attributes = [f'href="{html.escape(self._file_url(hosted))}#sha256={hosted.sha256}"']
            if hosted.requires_python is not None:
                attributes.append(f'data-requires-python="{html.escape(hosted.requires_python)}"')
            if hosted.yanked is not False:
                reason = hosted.yanked if isinstance(hosted.yanked, str) else ""
                attributes.append(f'data-yanked="{html.escape(reason)}"')
            if hosted.metadata is not None:
                digest = hashlib.sha256(hosted.metadata).hexdigest()
                attributes.append(f'data-dist-info-metadata="sha256={digest}"')
                attributes.append(f'data-core-metadata="sha256={digest}"')
            anchors.append(f"<a {' '.join(attributes)}>{html.escape(hosted.filename)}</a><br/>\n")
        return _html_document(f"Links for {name}", "".join(anchors))

    def _render_json(self, name: str, files: list[HostedFile]) -> bytes:
        entries: list[dict[str, Any]] = []
        for hosted in files:
            entry: dict[str, Any] = {
                "filename": hosted.filename,
                "url": self._file_url(hosted),
                "hashes": {"sha256": hosted.sha256},
                "size": len(hosted.data),
                "upload-time": hosted.upload_time,
                "yanked": hosted.yanked,
            }
            if hosted.requires_python is not None:
                entry["requires-python"] = hosted.requires_python
            if hosted.metadata is not None:
                digest = {"sha256": hashlib.sha256(hosted.metadata).hexdigest()}
                entry["core-metadata"] = digest
                entry["dist-info-metadata"] = digest
            entries.append(entry)
        versions = sorted({f.version for f in files if f.version}, key=_version_key)
        document = {
            "meta": {"api-version": "1.1"},
            "name": name,
            "versions": versions,
            "files": entries,
        }
        return json.dumps(document, indent=1).encode()

    def _page_response(self, request: web.Request, body: bytes, modified: float) -> web.Response:
        content_type = JSON_CONTENT_TYPE if self.mode == "json" else HTML_CONTENT_TYPE
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {"ETag": etag, "Last-Modified": formatdate(modified, usegmt=True)}
        if _is_not_modified(request, etag, modified):
            with self._lock:
                self._counters.not_modified[request.path] += 1
            return web.Response(status=304, headers=headers)
        charset = "utf-8" if self.mode == "html" else None
        return web.Response(body=body, content_type=content_type, charset=charset, headers=headers)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        project = request.match_info["project"]
        filename = request.match_info["filename"]
        wants_metadata = filename.endswith(".metadata")
        listed = filename.removesuffix(".metadata") if wants_metadata else filename
        with self._lock:
            hosted = self._files.get(project, {}).get(listed)
            body = None
            if hosted is not None:
                body = hosted.metadata if wants_metadata else hosted.served_bytes
            modified = self._modified.get(project, self._started_at)
        if body is None:
            raise web.HTTPNotFound(text=f"no file {filename!r}\n")
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(modified, usegmt=True),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if _is_not_modified(request, etag, modified):
            with self._lock:
                self._counters.not_modified[request.path] += 1
            return web.Response(status=304, headers=headers)
        status = 200
        byte_range = _single_range(request.headers.get("Range"), len(body))
        if byte_range is not None:
            start, end = byte_range
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(body)}"
            body = body[start:end]
            status = 206
        if request.method == "HEAD":
            return web.Response(status=status, body=body, headers=headers)
        headers["Content-Length"] = str(len(body))
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        throttle = self.throttle
        chunk_size = throttle.chunk_size if throttle else 256 * 1024
        for offset in range(0, len(body), chunk_size):
            await response.write(body[offset : offset + chunk_size])
            if throttle is not None:
                await asyncio.sleep(throttle.delay)
        await response.write_eof()
        with self._lock:
            self._counters.completed[request.path] += 1
        return response


def _html_document(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta name="pypi:repository-version" content="1.1">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n"
    ).encode()


def _is_not_modified(request: web.Request, etag: str, modified: float) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return etag in candidates or "*" in candidates
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError):
            return False
        return int(modified) <= since
    return False


def _single_range(header: str | None, length: int) -> tuple[int, int] | None:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` -> [start, end); anything else -> whole body."""
    if header is None or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header.removeprefix("bytes=").partition("-")
    try:
        if first == "":
            start, end = max(length - int(last), 0), length
        else:
            start = int(first)
            end = min(int(last) + 1, length) if last else length
    except ValueError:
        return None
    if start >= end:
        return None
    return start, end


# The `make_upstream` fixture: `(mode="html", *, absolute_urls=False, publish=True)`.
UpstreamFactory = Callable[..., UpstreamServer]
