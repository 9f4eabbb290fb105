"""A static simple-API index on loopback for the benchmarks, run as its own process.

    python -m bench.upstream DATA_ROOT [--port 0] [--file-latency-ms N] [--file-rate-mib N]
                             [--page-latency-ms N]

Serves a `bench.dataset.DataRoot`: `/simple/` (the project list) and `/simple/{project}/`
as PEP 691 JSON when the Accept header asks for it (q-values ignored: any mention of the
JSON type wins), else PEP 503 HTML;
`/files/{project}/{filename}` with aiohttp's `FileResponse` (sendfile, Range, ETag). Pages
carry an ETag and answer a matching `If-None-Match` with 304. Announces
`bench-upstream: serving on http://127.0.0.1:PORT` on stderr once it listens, and runs until
SIGTERM / SIGINT. No access log.

Pacing, like an index far away:

* `--file-latency-ms N`: each file request waits N ms before its answer's headers (the
  round trip before a file's first byte).
* `--file-rate-mib N`: each file body is sent in 64 KiB pieces, each piece only once N MiB/s
  lets its last byte out, counted on the monotonic clock from the moment the headers went
  (so a late wake-up is made up for, not added on): a 1 MiB file at 8 MiB/s takes 125 ms
  after its headers. A bound per answer (per connection), however many run at once.
* `--page-latency-ms N`: each page request (the project list, a project page, a 304 too)
  waits N ms before its answer.

With both at 0 (the default) files go out through `FileResponse` as above. A paced answer
is a plain 200 with the whole file and its Content-Length: it ignores `Range` (HTTP lets a
server do so; the proxy's range reader takes a whole-file answer) and sends no ETag.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bench.dataset import JSON_CONTENT_TYPE, render_root_html, render_root_json

_PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_FILENAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")
PIECE = 64 * 1024  # bytes per write of a paced file answer
MIB = 1024 * 1024


@dataclass(frozen=True)
class Pacing:
    """How file answers are slowed down (0 = not at all)."""

    latency_s: float = 0.0  # before the headers
    rate: float = 0.0  # bytes per second, per answer
    page_latency_s: float = 0.0  # before a page's answer

    @property
    def paced(self) -> bool:
        return self.latency_s > 0 or self.rate > 0


DATA_ROOT: web.AppKey[Path] = web.AppKey("data_root", Path)
PACING: web.AppKey[Pacing] = web.AppKey("pacing", Pacing)


def _wants_json(request: web.Request) -> bool:
    return JSON_CONTENT_TYPE in request.headers.get("Accept", "")


def _page(request: web.Request) -> web.Response:
    project = request.match_info["project"]
    if not _PROJECT_RE.match(project):
        raise web.HTTPNotFound()
    suffix = "json" if _wants_json(request) else "html"
    path = request.app[DATA_ROOT] / "pages" / f"{project}.{suffix}"
    if not path.is_file():
        raise web.HTTPNotFound(text=f"no project {project!r}\n")
    return _answer(request, path.read_bytes())


def _answer(request: web.Request, body: bytes) -> web.Response:
    content_type = JSON_CONTENT_TYPE if _wants_json(request) else "text/html"
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=body, headers={"ETag": etag, "Content-Type": content_type})


async def root_handler(request: web.Request) -> web.Response:
    await asyncio.sleep(request.app[PACING].page_latency_s)
    names = sorted({path.stem for path in (request.app[DATA_ROOT] / "pages").iterdir()})
    body = render_root_json(names) if _wants_json(request) else render_root_html(names)
    return _answer(request, body)


async def page_handler(request: web.Request) -> web.Response:
    await asyncio.sleep(request.app[PACING].page_latency_s)
    return _page(request)


async def file_handler(request: web.Request) -> web.StreamResponse:
    project, filename = request.match_info["project"], request.match_info["filename"]
    if not _PROJECT_RE.match(project) or not _FILENAME_RE.match(filename):
        raise web.HTTPNotFound()
    path = request.app[DATA_ROOT] / "files" / project / filename
    if not path.is_file():
        raise web.HTTPNotFound(text=f"no file {filename!r}\n")
    pacing = request.app[PACING]
    if pacing.paced:
        return await paced_file(request, path, pacing)
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})


async def paced_file(request: web.Request, path: Path, pacing: Pacing) -> web.StreamResponse:
    """The whole file, its headers after `pacing.latency_s`, its body no faster than
    `pacing.rate` (when set)."""
    await asyncio.sleep(pacing.latency_s)
    with path.open("rb") as source:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = path.stat().st_size
        await response.prepare(request)
        started, sent = time.monotonic(), 0
        while piece := source.read(PIECE):
            sent += len(piece)
            if pacing.rate > 0:  # not before the rate lets this piece's last byte out
                await asyncio.sleep(started + sent / pacing.rate - time.monotonic())
            await response.write(piece)
    await response.write_eof()
    return response


def make_app(data_root: Path, pacing: Pacing | None = None) -> web.Application:
    app = web.Application()
    app[DATA_ROOT] = data_root
    app[PACING] = pacing or Pacing()
    app.router.add_get("/simple/", root_handler)
    app.router.add_get("/simple/{project}/", page_handler)
    app.router.add_get("/files/{project}/{filename}", file_handler)
    return app


async def serve(data_root: Path, port: int, pacing: Pacing) -> None:
    runner = web.AppRunner(make_app(data_root, pacing), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"bench-upstream: serving on http://127.0.0.1:{bound}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_root", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--file-latency-ms", type=_not_negative, default=0.0)
    parser.add_argument("--file-rate-mib", type=_not_negative, default=0.0)
    parser.add_argument("--page-latency-ms", type=_not_negative, default=0.0)
    args = parser.parse_args()
    pacing = Pacing(
        args.file_latency_ms / 1000, args.file_rate_mib * MIB, args.page_latency_ms / 1000
    )
    asyncio.run(serve(args.data_root, args.port, pacing))


def _not_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


if __name__ == "__main__":
    main()
