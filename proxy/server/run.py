"""Running the server: listen, announce, wait for SIGINT/SIGTERM, shut down, each step logged
as one line (no traceback for an operator's ordinary mistake such as a cache directory that
another proxy already uses).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiohttp import web

from proxy.config import ConfigError, Settings
from proxy.server.app import make_app, request_counter
from proxy.server.logs import LOGGER_NAME, access_logger_class, configure_logging
from proxy.server.state import SHUTDOWN_GRACE_S, STATE
from proxy.store.errors import StoreFormatError, StoreLockedError
from proxy.upstreams.source import redact

log = logging.getLogger(LOGGER_NAME)

# Exit statuses of `serve`.
EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG = 0, 1, 2


def describe_upstream(upstream: Any) -> str:
    """`name=URL` (credentials removed) or `name=PATH` of one configured upstream."""
    url = getattr(upstream, "url", None)
    where = redact(url) if isinstance(url, str) else str(getattr(upstream, "path", "?"))
    return f"{upstream.name}={where}"


def listening_url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class ListenError(Exception):
    """The address cannot be listened on (in use, not ours, no permission)."""


async def _serve(settings: Settings) -> None:
    sink = configure_logging(settings.log_format, access_log=settings.access_log)
    app = make_app(settings)
    # On SIGTERM: stop listening, let running requests finish (bounded), then the store
    # lets running downloads finish and keep their files (bounded again) before closing.
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_GRACE_S,
        access_log_class=access_logger_class(sink, request_counter(app)),
        access_log=logging.getLogger(LOGGER_NAME + ".access"),
    )
    # Signals first: a SIGTERM right after the start-up line is still a clean shutdown.
    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _on_signal, signum, stop, received)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
        try:
            await site.start()
        except OSError as exc:
            where = listening_url(settings.host, settings.port)
            raise ListenError(f"cannot listen on {where}: {exc.strerror or exc}") from None
        port = runner.addresses[0][1] if runner.addresses else settings.port
        url = listening_url(settings.host, port)
        app[STATE].listening(url)
        upstreams = [describe_upstream(u) for u in settings.upstreams]
        log.info(
            "variant-proxy: serving on %s",
            url,
            extra={
                "fields": {
                    "url": url,
                    "upstreams": upstreams,
                    "cache_dir": str(settings.cache_dir),
                }
            },
        )
        await stop.wait()
        sink.flush()
        log.info("%s received: shutting down", received[0] if received else "signal")
    finally:
        await runner.cleanup()
        sink.flush()  # the access lines of the requests that finished during shutdown
    log.info("stopped")


def _on_signal(signum: int, stop: asyncio.Event, received: list[str]) -> None:
    received.append(signal.Signals(signum).name)
    stop.set()


def serve(settings: Settings) -> int:
    """Run the proxy until SIGINT/SIGTERM; the exit status."""
    try:
        asyncio.run(_serve(settings))
    except ConfigError as exc:
        log.error("config error: %s", exc)
        return EXIT_CONFIG
    except StoreLockedError:
        log.error(
            "cache directory %s is in use by another variant-proxy process: "
            "stop it, or give this one another --cache-dir",
            settings.cache_dir,
        )
        return EXIT_RUNTIME
    except StoreFormatError as exc:
        log.error("cannot use cache directory %s: %s", settings.cache_dir, exc)
        return EXIT_RUNTIME
    except ListenError as exc:
        log.error("%s", exc)
        return EXIT_RUNTIME
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return EXIT_RUNTIME
    return EXIT_OK
