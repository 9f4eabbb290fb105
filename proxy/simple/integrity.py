"""What a file must be (hashes and size from the index page) and the check of its bytes (pure).

Shared by the file store (every download) and the upstreams (small files they fetch
themselves: variants.json, core metadata). `ContentCheck` is fed the bytes as they arrive
and hashes them on the way, so no file is ever read twice or held in memory. It verifies
every hash named on the page that hashlib guarantees (PEP 503 names hashes by their hashlib
name); names it does not know are ignored. sha256 is always computed, so the store can
record it for every file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

# shake_* have no fixed digest length, so a page cannot name one of their digests.
VERIFIABLE_HASHES = frozenset(hashlib.algorithms_guaranteed) - {"shake_128", "shake_256"}


class ContentMismatch(Exception):
    """The bytes are not what the index page promised."""


class HashMismatch(ContentMismatch):
    """The bytes do not have a hash the index page promised."""


class SizeMismatch(ContentMismatch):
    """The bytes do not have the size the index page promised."""


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ExpectedFile:
    """What the index page says about a file: hash name -> hex digest, and its size."""

    hashes: Mapping[str, str] = field(default_factory=dict)
    size: int | None = None


class ContentCheck:
    """Hashes and counts a file's bytes as they arrive and checks them against `expected`.

    Its failures are `size_mismatch` and `hash_mismatch` (the store's check raises its own
    download errors, which are also `ContentMismatch`)."""

    size_mismatch: type[SizeMismatch] = SizeMismatch
    hash_mismatch: type[HashMismatch] = HashMismatch

    def __init__(self, key: str, expected: ExpectedFile) -> None:
        self._key = key
        self._expected = expected
        self._expected_digests = {
            name.lower(): digest.lower()
            for name, digest in expected.hashes.items()
            if name.lower() in VERIFIABLE_HASHES
        }
        self._hashers: dict[str, _Hasher] = {
            name: hashlib.new(name) for name in {"sha256", *self._expected_digests}
        }
        self.size = 0

    def update(self, chunk: bytes) -> None:
        """Take the next bytes; raise `size_mismatch` as soon as they exceed the expected size."""
        self.size += len(chunk)
        self.check_received(self.size)
        for hasher in self._hashers.values():
            hasher.update(chunk)

    def check_received(self, total: int) -> None:
        """Raise `size_mismatch` when `total` bytes are more than the expected size."""
        if self._expected.size is not None and total > self._expected.size:
            raise self.size_mismatch(
                f"{self._key}: upstream sent more than the expected {self._expected.size} bytes"
            )

    def check_announced_length(self, length: int | None) -> None:
        """Raise `size_mismatch` when the upstream announces a length other than the page's."""
        expected = self._expected.size
        if length is not None and expected is not None and length != expected:
            raise self.size_mismatch(
                f"{self._key}: upstream announces {length} bytes, the page says {expected}"
            )

    def verify(self) -> str:
        """Check the complete file; return its sha256 hex digest or raise a mismatch error."""
        expected_size = self._expected.size
        if expected_size is not None and self.size != expected_size:
            raise self.size_mismatch(
                f"{self._key}: got {self.size} bytes, the page says {expected_size}"
            )
        for name, expected_digest in sorted(self._expected_digests.items()):
            actual = self._hashers[name].hexdigest()
            if actual != expected_digest:
                raise self.hash_mismatch(
                    f"{self._key}: {name} is {actual}, the page says {expected_digest}"
                )
        return self._hashers["sha256"].hexdigest()
