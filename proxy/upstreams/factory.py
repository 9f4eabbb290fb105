"""Makes the `UpstreamSource` for each configured `[[upstreams]]` entry, by its kind."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from proxy.config import DirectorySettings, UpstreamConfig
from proxy.upstreams.directory import DirectorySource
from proxy.upstreams.http import Upstream
from proxy.upstreams.source import UpstreamSource


def make_upstream(
    settings: UpstreamConfig,
    session: aiohttp.ClientSession,
    environ: Mapping[str, str] | None = None,
) -> UpstreamSource:
    """The source for one configured upstream (a new kind adds its branch here)."""
    if isinstance(settings, DirectorySettings):
        return DirectorySource(settings)
    return Upstream(settings, session, environ)
