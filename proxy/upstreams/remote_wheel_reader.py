"""Reads a listed variant wheel's `*.dist-info/variant.json` from its upstream with HTTP range
requests: the adapter between `Upstream.fetch_range` and `remote_wheel.read_remote_member`."""

from __future__ import annotations

from proxy.simple.model import DistFile
from proxy.upstreams.http import Upstream
from proxy.upstreams.remote_wheel import RangeAnswer, is_dist_info_variant_json, read_remote_member
from proxy.upstreams.zip_ranges import parse_content_range


async def read_variant_member(upstream: Upstream, dist: DistFile) -> bytes | None:
    """The wheel's variant.json bytes, or None when it has none."""

    async def fetch_range(start: int | None, length: int) -> RangeAnswer:
        status, body, content_range = await upstream.fetch_range(dist.url, start, length)
        if status == 200 or content_range is None:
            return RangeAnswer(body, 0, len(body), whole_file=True)
        parsed = parse_content_range(content_range)
        return RangeAnswer(body, parsed.start, parsed.total, whole_file=False)

    return await read_remote_member(fetch_range, is_dist_info_variant_json)
