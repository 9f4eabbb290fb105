"""What a download reads from: the upstream's answer, as a length and a body of chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Protocol


class UpstreamBody(Protocol):
    """What a download reads from the upstream's answer: its announced length, its chunks.

    Any object with these two attributes will do (`SourceResponse` is the plain one). If
    `chunks` has an `aclose()` (an async generator does), the download calls it when it
    stops reading, so a generator can release its HTTP response in a `finally`. Note that
    the download may stop before the first chunk (the announced length contradicts the
    page), and closing an async generator that never started does not run its `finally`.
    """

    @property
    def length(self) -> int | None: ...

    @property
    def chunks(self) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True, slots=True)
class SourceResponse:
    """An `UpstreamBody`: the announced length (if any) and the body's chunks."""

    length: int | None
    chunks: AsyncIterator[bytes]


# Opens the file at the upstream; its errors come back unchanged from `Download.ready()`.
Source = Callable[[], Awaitable[UpstreamBody]]


async def close_chunks(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with suppress(Exception):
            await aclose()
