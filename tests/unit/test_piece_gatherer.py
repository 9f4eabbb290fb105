"""A download's body pieces gathered into fewer hand-overs to its (real) chunk writer:
the first at once, then by size or after a short wait, in order, nothing after a drop."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from proxy.store.chunk_writer import ChunkWriter
from proxy.store.piece_gatherer import HANDOVER_BYTES, HANDOVER_WAIT_S, PieceGatherer
from proxy.store.verify import ContentCheck, ExpectedFile

SMALL = 4 * 1024


class Handed:
    """The chunks handed over, and what the writer reported written."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.written: list[int] = []


def gatherer_on(path: Path, data: bytes, handed: Handed) -> tuple[PieceGatherer, ChunkWriter]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    check = ContentCheck("key", ExpectedFile({"sha256": hashlib.sha256(data).hexdigest()}, None))
    writer = ChunkWriter("key", fd, check, handed.written.append, lambda: os.close(fd))
    return PieceGatherer(writer, handed.chunks.append), writer


async def test_the_first_piece_goes_at_once_then_pieces_wait_for_size(tmp_path: Path) -> None:
    pieces = [os.urandom(SMALL) for _ in range(2 + HANDOVER_BYTES // SMALL)]
    data = b"".join(pieces)
    handed = Handed()
    gatherer, writer = gatherer_on(tmp_path / "file", data, handed)
    for piece in pieces:
        await gatherer.add(piece)
    await gatherer.finish()
    await asyncio.wait_for(writer.finish(), 20)
    # first piece alone; the next HANDOVER_BYTES in one; the last piece at the finish
    assert [len(chunk) for chunk in handed.chunks] == [SMALL, HANDOVER_BYTES, SMALL]
    assert handed.written == [SMALL, HANDOVER_BYTES, SMALL]
    assert (tmp_path / "file").read_bytes() == data


async def test_a_piece_that_waits_goes_after_the_short_wait(tmp_path: Path) -> None:
    first, second, third = os.urandom(SMALL), os.urandom(SMALL), os.urandom(SMALL)
    handed = Handed()
    gatherer, writer = gatherer_on(tmp_path / "file", first + second + third, handed)
    await gatherer.add(first)
    await gatherer.add(second)
    await gatherer.add(third)
    assert handed.chunks == [first]
    assert gatherer.pending == [second, third]  # readable from memory meanwhile
    await asyncio.sleep(HANDOVER_WAIT_S * 10)
    assert handed.chunks == [first, second + third]
    assert gatherer.pending == []
    await gatherer.finish()
    await asyncio.wait_for(writer.finish(), 20)
    assert (tmp_path / "file").read_bytes() == first + second + third


async def test_nothing_is_handed_over_after_a_drop(tmp_path: Path) -> None:
    first, second = os.urandom(SMALL), os.urandom(SMALL)
    handed = Handed()
    gatherer, writer = gatherer_on(tmp_path / "file", first + second, handed)
    await gatherer.add(first)
    await gatherer.add(second)
    gatherer.drop()
    await asyncio.sleep(HANDOVER_WAIT_S * 10)
    assert handed.chunks == [first]
    assert gatherer.pending == []
    writer.abandon()
    await asyncio.wait_for(writer.stopped.wait(), 20)
