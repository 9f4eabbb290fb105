"""Where the file store keeps complete files: the `BlobBackend` Protocol under its policy.

The store (`proxy.store.file_store`) decides: one download per key, hashes checked before
anything is kept, an index of what is kept with LRU eviction, crash safety. A backend only
holds bytes under keys, and knows nothing of hashes, sizes on pages or eviction order:

- `put` takes a complete, verified temporary file (a local file the store downloaded and
  checked) and keeps it under its key, durably, consuming the temporary file;
- `open` gives a `Blob` to read it, whole or by range, or None when it is not there;
- `stat` gives its size without opening it; `delete` forgets keys (missing ones are fine);
- `check` refuses, before anything is fetched, a key that cannot safely name a blob here.

Keys are already checked by the store (`proxy.store.layout.KEY_PATTERN`: lowercase letters,
digits and '-'). Local disk (`proxy.store.local_disk`) is the first implementation; an
object store fits the same shape. Routes never see where a blob lives: they send a `Blob`
(its `local_file`, when it has one, only enables a zero-copy send).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Blob(Protocol):
    """One stored blob, opened for reading."""

    @property
    def size(self) -> int:
        """The blob's size in bytes."""
        ...

    @property
    def local_file(self) -> Path | None:
        """A local file holding exactly these bytes, for a zero-copy send (sendfile); None
        when the blob is not on local disk. Never build or change a path from it."""
        ...

    def chunks(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes in [start, end) (end None: to the end), in chunks of bounded size."""
        ...


class BlobBackend(Protocol):
    """Complete, verified files under keys."""

    async def prepare(self) -> None:
        """Create or check the place blobs live; called once when the store opens."""
        ...

    def check(self, key: str) -> None:
        """Raise `PathEscapeError` (or `InvalidKeyError`) when `key` cannot safely name a
        blob here; cheap, called before any download of `key` starts."""
        ...

    async def put(self, key: str, verified: Path, size: int) -> Blob:
        """Keep the complete file at `verified` (local, `size` bytes, already checked) under
        `key`, replacing any blob of that key, durably; the temporary file is consumed."""
        ...

    async def open(self, key: str) -> Blob | None:
        """The blob of `key` for reading, or None when there is none."""
        ...

    async def stat(self, key: str) -> int | None:
        """The size of the blob of `key`, or None when there is none."""
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Forget the blobs of `keys`, durably; keys with no blob are skipped."""
        ...


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A complete, verified file in the store: its key, size, sha256 and readable blob."""

    key: str
    size: int
    sha256: str
    blob: Blob
