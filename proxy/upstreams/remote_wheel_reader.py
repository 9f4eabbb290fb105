"""Reads a listed variant wheel's `*.dist-info/variant.json` from its upstream with range
requests: `UpstreamSource.fetch_range` fed to `remote_wheel.read_remote_member`."""

from __future__ import annotations

from proxy.simple.model import DistFile
from proxy.upstreams.remote_wheel import is_dist_info_variant_json, read_remote_member
from proxy.upstreams.source import RangeAnswer, UpstreamSource


async def read_variant_member(upstream: UpstreamSource, dist: DistFile) -> bytes | None:
    """The wheel's variant.json bytes, or None when it has none."""

    async def fetch_range(start: int | None, length: int) -> RangeAnswer:
        return await upstream.fetch_range(dist.url, start, length)

    return await read_remote_member(fetch_range, is_dist_info_variant_json)
