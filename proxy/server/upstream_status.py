"""Whether each upstream answers: what the last real request to it saw, or, when nothing has
asked it lately, a quick connection probe (cached for `PROBE_TTL_S`). Used by `/health`
(`degraded`, with the reasons, while the proxy can still serve) and the status page.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from proxy.upstreams.failures import describe, host_of
from proxy.upstreams.page_loader import UpstreamCounters
from proxy.upstreams.source import redact

# A real request newer than this is trusted; older, the upstream is probed.
RECENT_S = 30.0
PROBE_TTL_S = 15.0
PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class UpstreamStatus:
    name: str
    where: str  # URL (credentials removed) or directory
    answering: bool | None  # None: not known yet
    reason: str  # why not answering ("" when it answers)
    seen_at: float | None  # when that was last observed
    requests: int
    errors: int


async def _probe_url(url: str) -> str:
    """ "" when a TCP connection to the URL's host and port opens, else the reason."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), PROBE_TIMEOUT_S
        )
    except (OSError, TimeoutError, ValueError) as exc:
        return f"cannot reach {host_of(url)}: {describe(exc)}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ""


async def _probe(upstream: Any) -> str:
    url = getattr(upstream, "url", None)
    if isinstance(url, str):
        return await _probe_url(url)
    path = getattr(upstream, "path", None)
    if path is not None and not Path(path).is_dir():
        return f"directory {path} is missing"
    return ""


class UpstreamWatch:
    """Each configured upstream's latest known state."""

    def __init__(
        self, upstreams: Sequence[Any], counters: UpstreamCounters, *, offline: bool = False
    ) -> None:
        self._offline = offline  # never probed: an offline proxy opens no connection
        self._upstreams = tuple(upstreams)
        self._counters = counters
        self._probed: dict[str, tuple[float, str]] = {}

    def _requests(self) -> Mapping[str, int]:
        totals: dict[str, int] = {}
        for (name, _kind), count in self._counters.requests.items():
            totals[name] = totals.get(name, 0) + count
        return totals

    async def statuses(self) -> list[UpstreamStatus]:
        now = time.time()
        stale = [u for u in self._upstreams if self._observed(u.name, now) is None]
        if self._offline:
            stale = []
        due = [u for u in stale if now - self._probed.get(u.name, (0.0, ""))[0] > PROBE_TTL_S]
        if due:
            reasons = await asyncio.gather(*(_probe(u) for u in due))
            for upstream, reason in zip(due, reasons, strict=True):
                self._probed[upstream.name] = (time.time(), reason)
        requests = self._requests()
        return [self._status(u, now, requests) for u in self._upstreams]

    def _observed(self, name: str, now: float) -> tuple[float, str] | None:
        """(time, reason) of the newest real request within RECENT_S; reason "" = answered."""
        answer = self._counters.last_answer.get(name)
        failure = self._counters.last_failure.get(name)
        newest: tuple[float, str] | None = None
        if answer is not None:
            newest = (answer, "")
        if failure is not None and (newest is None or failure[0] > newest[0]):
            newest = failure
        if newest is None or now - newest[0] > RECENT_S:
            return None
        return newest

    def _status(self, upstream: Any, now: float, requests: Mapping[str, int]) -> UpstreamStatus:
        name = upstream.name
        seen = self._observed(name, now) or self._probed.get(name)
        url = getattr(upstream, "url", None)
        where = redact(url) if isinstance(url, str) else str(getattr(upstream, "path", ""))
        return UpstreamStatus(
            name=name,
            where=where,
            answering=None if seen is None else not seen[1],
            reason="" if seen is None else seen[1],
            seen_at=None if seen is None else seen[0],
            requests=requests.get(name, 0),
            errors=self._counters.errors.get(name, 0),
        )
