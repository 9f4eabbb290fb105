"""Reading one member of a remote wheel through HTTP range requests.

Owns the loop that feeds `proxy.upstreams.zip_ranges` the byte ranges it asks for: first the tail of
the file (`Range: bytes=-N`), then whatever the zip structures say is missing (usually the
member's local header and data, in one request). The HTTP itself is the caller's: it
passes a `fetch_range(start, length)` that answers with a `RangeAnswer`
(`UpstreamSource.fetch_range` does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from proxy.upstreams.source import RangeAnswer
from proxy.upstreams.zip_ranges import FoundMember, NeedBytes, PartialFile, next_step
from proxy.upstreams.zip_records import DEFAULT_LIMITS, ZipLimits, ZipRangeError

DEFAULT_TAIL_SIZE = 64 * 1024
# A well-formed archive needs at most six ranges after the tail; more means the server
# keeps answering with too little.
MAX_RANGE_REQUESTS = 16


# `fetch_range(start, length)`: `length` bytes from `start`; start None means the last
# `length` bytes (`Range: bytes=-length`).
FetchRange = Callable[[int | None, int], Awaitable[RangeAnswer]]


def is_dist_info_variant_json(name: str) -> bool:
    """Whether a wheel member is `{name}-{version}.dist-info/variant.json` (PEP 825)."""
    directory, slash, file_name = name.partition("/")
    return (
        bool(slash)
        and len(directory) > len(".dist-info")
        and directory.endswith(".dist-info")
        and file_name == "variant.json"
    )


async def read_remote_member(
    fetch_range: FetchRange,
    predicate: Callable[[str], bool],
    tail_size: int = DEFAULT_TAIL_SIZE,
    *,
    limits: ZipLimits = DEFAULT_LIMITS,
) -> bytes | None:
    """The decompressed bytes of the one member whose name satisfies `predicate`, or None
    when no member does. Raises `ZipRangeError` for a malformed or changing file."""
    if tail_size <= 0:
        raise ValueError(f"tail_size must be positive, got {tail_size}")
    first = await fetch_range(None, tail_size)
    if first.whole_file:
        file = PartialFile.whole(first.data)
    else:
        # The answer to a suffix range ends at the end of the file.
        size = first.total_size if first.total_size is not None else first.start + len(first.data)
        file = PartialFile(size).with_bytes(first.start, first.data)
    previous_need: NeedBytes | None = None
    for _ in range(MAX_RANGE_REQUESTS):
        step = next_step(file, predicate, limits)
        if not isinstance(step, NeedBytes):
            return step.data if isinstance(step, FoundMember) else None
        if step == previous_need:
            raise ZipRangeError(
                f"range request for bytes [{step.start}, {step.end}) brought none of them"
            )
        previous_need = step
        file = _with_answer(file, await fetch_range(step.start, step.length))
    raise ZipRangeError(
        f"gave up after {MAX_RANGE_REQUESTS} range requests that each brought too little"
    )


def _with_answer(file: PartialFile, answer: RangeAnswer) -> PartialFile:
    size = len(answer.data) if answer.whole_file else answer.total_size
    if size is not None and size != file.size:
        raise ZipRangeError(f"file size changed from {file.size} to {size} between requests")
    # Merged, not replacing what is known, so that bytes which changed are noticed.
    return file.with_bytes(0 if answer.whole_file else answer.start, answer.data)
