"""The store's check of a download: the index page's `ContentCheck`
(`proxy.simple.integrity`), failing with the store's download errors (`HashMismatch` and
`SizeMismatch` are `DownloadFailed`, so a client never gets a complete, wrong file)."""

from __future__ import annotations

from proxy.simple.integrity import ContentCheck as PageContentCheck
from proxy.simple.integrity import ExpectedFile
from proxy.store.errors import HashMismatch, SizeMismatch

__all__ = ["ContentCheck", "ExpectedFile"]


class ContentCheck(PageContentCheck):
    """Hashes and counts a download's bytes as they arrive and checks them on the way."""

    size_mismatch = SizeMismatch
    hash_mismatch = HashMismatch
