"""The one byte format of a cached page, on disk and in a cluster's Redis (pure).

    {"format":2,"url":...,"content_type":...,"etag":...,"last_modified":...,
     "fetched_at":...,"missing":...,"digest":...}\\n<body bytes>

One JSON line (no newline inside: JSON escapes it), a newline, then the upstream's body
exactly as received. `format` is `PAGE_FORMAT`; bytes of any other format or shape decode
to None, a miss, so a later version can change the format and simply refetch. (Format 1
was a pickled Python class, in `pages-v1/`; it is never read.)
"""

from __future__ import annotations

import json

from proxy.pages.model import CachedPage

PAGE_FORMAT = 2


def encode_page(page: CachedPage) -> bytes:
    header = {
        "format": PAGE_FORMAT,
        "url": page.url,
        "content_type": page.content_type,
        "etag": page.etag,
        "last_modified": page.last_modified,
        "fetched_at": page.fetched_at,
        "missing": page.missing,
        "digest": page.digest,
    }
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + page.body


def decode_page(data: object) -> CachedPage | None:
    """The page, or None when `data` is not a page of this format."""
    if not isinstance(data, bytes):
        return None
    line, newline, body = data.partition(b"\n")
    try:
        header = json.loads(line)
        if not newline or not isinstance(header, dict) or header.get("format") != PAGE_FORMAT:
            return None
        return CachedPage(
            body=body,
            content_type=str(header["content_type"]),
            url=str(header["url"]),
            etag=_optional_text(header["etag"]),
            last_modified=_optional_text(header["last_modified"]),
            fetched_at=float(header["fetched_at"]),
            missing=bool(header["missing"]),
            digest=str(header["digest"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)
