"""The root project list of a 700k-project upstream: does it hold the proxy up?

    python -m bench.root_index [--projects 700000]

A local upstream (a thread of this process, on loopback) serves a project list of N names as
PEP 691 JSON or PEP 503 HTML. The proxy is asked for `/simple/` cold (fetch, parse, merge,
render) while a second client polls `/health` every 10 ms: the worst `/health` latency during
the cold request says whether the event loop was held up. Then the warm list is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.common import exit_on_sigterm, load_note, print_table, start_proxy
from bench.dataset import JSON_CONTENT_TYPE, render_root_html, render_root_json

POLL_INTERVAL_S = 0.01


class ListUpstream:
    """Serves one big project list at /simple/ from a thread of this process."""

    def __init__(self, names: list[str]) -> None:
        self.html = render_root_html(names)
        self.json = render_root_json(names)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _root(self, request: web.Request) -> web.Response:
        if JSON_CONTENT_TYPE in request.headers.get("Accept", "") and self.json:
            return web.Response(body=self.json, content_type=JSON_CONTENT_TYPE)
        return web.Response(body=self.html, content_type="text/html")

    def start(self) -> str:
        self._thread.start()

        async def serve() -> None:
            app = web.Application()
            app.router.add_get("/simple/", self._root)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.port = int(runner.addresses[0][1])

        asyncio.run_coroutine_threadsafe(serve(), self._loop).result(timeout=30)
        return f"http://127.0.0.1:{self.port}/simple/"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


async def _poll_health(
    session: aiohttp.ClientSession, base: str, stop: asyncio.Event, latencies: list[float]
) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        async with session.get(f"{base}/health") as response:
            await response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(POLL_INTERVAL_S)


async def _measure(base: str, accept: str) -> tuple[float, float, float, float, int]:
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        stop = asyncio.Event()
        latencies: list[float] = []
        poller = asyncio.create_task(_poll_health(session, base, stop, latencies))
        started = time.perf_counter()
        async with session.get(f"{base}/simple/", headers={"Accept": accept}) as response:
            body = await response.read()
        cold_ms = (time.perf_counter() - started) * 1000
        stop.set()
        await poller
        started = time.perf_counter()
        async with session.get(f"{base}/simple/", headers={"Accept": accept}) as response:
            await response.read()
        warm_ms = (time.perf_counter() - started) * 1000
    return cold_ms, warm_ms, max(latencies), statistics.median(latencies), len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=700_000)
    args = parser.parse_args()
    exit_on_sigterm()
    print(f"bench.root_index: {load_note()}")
    names = [f"project-{i:07d}" for i in range(args.projects)]
    rows = []
    for label, accept in (("JSON", JSON_CONTENT_TYPE), ("HTML", "text/html")):
        upstream = ListUpstream(names)
        if label == "HTML":
            upstream.json = b""  # an HTML-only upstream: the proxy must parse the HTML list
        index_url = upstream.start()
        with tempfile.TemporaryDirectory(prefix="bench-root-") as folder:
            proxy = start_proxy(index_url, Path(folder), cpu=None)
            try:
                cold, warm, worst, median, size = asyncio.run(_measure(proxy.url, accept))
            finally:
                proxy.stop()
        upstream.stop()
        rows.append(
            (
                f"{label} upstream, {label} to client",
                f"{size / 2**20:.1f} MiB",
                f"{cold:,.0f}",
                f"{warm:,.1f}",
                f"{median:.1f}",
                f"{worst:.1f}",
            )
        )
    print_table(
        f"Root project list of {args.projects:,} projects: cold and warm, and /health latency "
        "polled every 10 ms during the cold request",
        ["case", "page", "cold ms", "warm ms", "/health median ms", "/health worst ms"],
        rows,
    )


if __name__ == "__main__":
    main()
