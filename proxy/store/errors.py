"""The exceptions of the file store, one class per way a store operation can go wrong.

`DownloadFailed` and its subclasses are what a client streaming a download sees: the
server turns any of them into an aborted response, so a client never gets a complete,
wrong file. Every message is one line naming the key and the bad part.
"""

from __future__ import annotations

from proxy.simple import integrity


class StoreError(Exception):
    """Base of every error raised by the file store."""


class InvalidKeyError(StoreError, ValueError):
    """A cache key does not have the allowed shape, so it cannot name a file."""


class PathEscapeError(StoreError):
    """A key's file path resolves outside the cache directory (e.g. a planted symlink)."""


class StoreFormatError(StoreError):
    """The cache directory holds an index this version cannot read."""


class StoreLockedError(StoreError):
    """Another process (or another open FileStore) already uses the cache directory."""


class StoreClosedError(StoreError):
    """The store was used before `open()` or after `close()`."""


class DownloadFailed(StoreError):
    """A download did not produce verified bytes; nothing of it is kept."""


class HashMismatch(DownloadFailed, integrity.HashMismatch):
    """The downloaded bytes do not have a hash the index page promised."""


class SizeMismatch(DownloadFailed, integrity.SizeMismatch):
    """The downloaded bytes do not have the size the index page promised."""


class UpstreamFailed(DownloadFailed):
    """The upstream failed or broke off before sending the whole file."""


class StorageFailed(DownloadFailed):
    """Writing the download to the cache directory failed (e.g. the disk is full)."""


class DownloadAborted(DownloadFailed):
    """The store closed while the download was running."""
