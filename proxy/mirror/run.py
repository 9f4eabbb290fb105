"""`variant-proxy mirror`: resolve every target through the proxy, fetch what was chosen.

Against a running proxy (`--proxy URL`) or an in-process one over the cache directory.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TextIO

import aiohttp

from proxy.config import Settings
from proxy.mirror.fetch import (
    DEFAULT_JOBS,
    FetchError,
    fetch_all,
    http_fetcher,
    in_process_fetcher,
    plan_fetches,
)
from proxy.mirror.local_proxy import local_proxy
from proxy.mirror.progress import MirrorProgress, progress_for
from proxy.mirror.record import merge_record, now_text
from proxy.mirror.resolve import Resolution, resolve_target
from proxy.mirror.targets import Target

if TYPE_CHECKING:
    from proxy.server.state import ProxyState

RESOLVE_JOBS = 4
# A page's TTL in a mirror run: once asked about, it stays fresh for the rest of the run.
RUN_PAGE_TTL_S = 86400.0


@dataclass(frozen=True)
class MirrorRequest:
    requirements: str  # requirements-file text handed to the resolver
    targets: Sequence[Target]
    proxy_url: str | None = None
    jobs: int = DEFAULT_JOBS


@dataclass(frozen=True)
class MirrorOutcome:
    resolutions: tuple[Resolution, ...]
    fetch_errors: tuple[str, ...]
    summary: str

    @property
    def ok(self) -> bool:
        return not self.fetch_errors and all(r.error is None for r in self.resolutions)


async def _resolve_all(request: MirrorRequest, base_url: str) -> tuple[Resolution, ...]:
    limit = asyncio.Semaphore(RESOLVE_JOBS)

    async def one(target: Target) -> Resolution:
        async with limit:
            return await resolve_target(target, base_url, request.requirements)

    return tuple(await asyncio.gather(*(one(t) for t in request.targets)))


async def _mirror_through(
    request: MirrorRequest,
    base_url: str,
    progress: MirrorProgress,
    state: ProxyState | None = None,
) -> MirrorOutcome:
    resolutions = await _resolve_all(request, base_url)
    resolved = [r for r in resolutions if r.error is None]
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    connector = aiohttp.TCPConnector(limit=max(request.jobs, 1) + 4)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=connector, trust_env=False, auto_decompress=True
    ) as session:
        try:
            items = await plan_fetches(session, base_url, resolved)
        except FetchError as exc:
            return MirrorOutcome(resolutions, (str(exc),), "nothing fetched")
        fetch = (
            in_process_fetcher(state, base_url)
            if state is not None
            else http_fetcher(session, progress)
        )
        errors = await fetch_all(items, progress, fetch, request.jobs)
    return MirrorOutcome(resolutions, tuple(errors), progress.finish())


def _revalidating(settings: Settings) -> Settings:
    """`settings` with every page cached before now stale: a rerun asks each upstream
    whether a page changed (a conditional request) and so picks up new releases, whatever
    the page TTLs. A page asked about during this run stays fresh for the rest of it, for
    uv, the plan and the fetch alike."""
    return replace(
        settings,
        upstreams=tuple(replace(upstream, ttl=RUN_PAGE_TTL_S) for upstream in settings.upstreams),
        index_ttl=RUN_PAGE_TTL_S,
        pages_checked_since=time.time(),
    )


async def run_mirror(
    request: MirrorRequest, settings: Settings, progress: MirrorProgress
) -> MirrorOutcome:
    if request.proxy_url is not None:
        return await _mirror_through(request, request.proxy_url, progress)
    async with local_proxy(_revalidating(settings)) as local:
        return await _mirror_through(request, local.url, progress, local.state)


def record_outcome(settings: Settings, request: MirrorRequest, outcome: MirrorOutcome) -> None:
    """Note in the cache directory what each resolved target mirrored."""
    merge_record(
        settings.cache_dir,
        {
            r.target.label: {
                "requirements": [line for line in request.requirements.splitlines() if line],
                # project/file-id/name: a variant's shown name alone is ambiguous
                "files": sorted({"/".join(f.url.rsplit("/", 3)[-3:]) for f in r.files}),
                "mirrored_at": now_text(),
            }
            for r in outcome.resolutions
            if r.error is None
        },
    )


def report(outcome: MirrorOutcome, out: TextIO = sys.stderr) -> int:
    """Print the summary and every failure, one line each; the exit status."""
    for resolution in outcome.resolutions:
        if resolution.error is not None:
            print(
                f"mirror: could not resolve for {resolution.target.label}: {resolution.error}",
                file=out,
            )
    for error in outcome.fetch_errors:
        print(f"mirror: could not fetch {error}", file=out)
    targets = sum(r.error is None for r in outcome.resolutions)
    print(
        f"mirror: {outcome.summary}; {targets}/{len(outcome.resolutions)} targets resolved",
        file=out,
    )
    return 0 if outcome.ok else 1


def mirror(request: MirrorRequest, settings: Settings, *, record: bool = True) -> int:
    """Mirror, note what each target got in the cache directory (`record`), report."""
    progress = progress_for(sys.stderr)
    outcome = asyncio.run(run_mirror(request, settings, progress))
    if record:
        record_outcome(settings, request, outcome)
    return report(outcome)
