"""An in-process proxy on a loopback port over a cache directory, for the commands that work
on the cache directly (`mirror` without `--proxy`, `export --static`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from aiohttp import web

from proxy.config import Settings

if TYPE_CHECKING:
    from proxy.server.state import ProxyState


@dataclass(frozen=True)
class LocalProxy:
    url: str
    state: ProxyState


@asynccontextmanager
async def local_proxy(settings: Settings) -> AsyncIterator[LocalProxy]:
    """Serve `settings` on 127.0.0.1 (any free port); yields its URL and state."""
    from proxy.server.app import make_app
    from proxy.server.state import STATE

    app = make_app(replace(settings, host="127.0.0.1", port=0))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield LocalProxy(f"http://127.0.0.1:{port}", app[STATE])
        await app[STATE].store.wait_idle()  # downloads the clients saw end are kept
    finally:
        await runner.cleanup()
