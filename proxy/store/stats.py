"""The file store's figures, as one snapshot for metrics."""

from __future__ import annotations

import dataclasses

from proxy.store.errors import (
    DownloadFailed,
    HashMismatch,
    SizeMismatch,
    StorageFailed,
    UpstreamFailed,
)


@dataclasses.dataclass(frozen=True, slots=True)
class StoreStats:
    """A snapshot of the store's figures for metrics."""

    total_bytes: int
    file_count: int
    downloads_in_flight: int
    bytes_from_upstream: int
    evictions: int
    hash_mismatches: int
    size_mismatches: int
    upstream_failures: int
    storage_failures: int


@dataclasses.dataclass(slots=True)
class DownloadCounters:
    """Running totals over all downloads of a store, for metrics."""

    bytes_from_upstream: int = 0
    hash_mismatches: int = 0
    size_mismatches: int = 0
    upstream_failures: int = 0
    storage_failures: int = 0

    def count_failure(self, failure: DownloadFailed) -> None:
        if isinstance(failure, HashMismatch):
            self.hash_mismatches += 1
        elif isinstance(failure, SizeMismatch):
            self.size_mismatches += 1
        elif isinstance(failure, UpstreamFailed):
            self.upstream_failures += 1
        elif isinstance(failure, StorageFailed):
            self.storage_failures += 1
