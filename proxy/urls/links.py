"""How the proxy names upstream files in its own URL space (pure).

A file's id is content-derived (its sha256 when the page gives one, else a digest of its
upstream URL), so one URL always means one set of bytes whatever the client's hardware.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from urllib.parse import quote, urldefrag

from proxy.simple.model import DistFile

FILE_ID_RE = re.compile(r"^(sha256-[0-9a-f]{64}|url-[0-9a-f]{40})$")
FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!~-]*$")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Names `quote` leaves as they are (its always-safe characters and "/"): most file names.
QUOTE_SAFE = re.compile(r"[A-Za-z0-9_.~/-]*")


def url_id(url: str) -> str:
    return "url-" + hashlib.sha256(url.encode()).hexdigest()[:40]


def file_id(dist: DistFile) -> str:
    sha256 = dist.hashes.get("sha256", "").lower()
    if SHA256_HEX.fullmatch(sha256):
        return f"sha256-{sha256}"
    return url_id(dist.url)


def metadata_url(dist: DistFile) -> str:
    """PEP 658: the file's URL, without any fragment, plus `.metadata`."""
    return urldefrag(dist.url).url + ".metadata"


def metadata_id(dist: DistFile) -> str:
    """Store key of the PEP 658 metadata file of `dist`."""
    hashes = dist.core_metadata if isinstance(dist.core_metadata, Mapping) else {}
    sha256 = str(hashes.get("sha256", "")).lower()
    if SHA256_HEX.fullmatch(sha256):
        return f"sha256-{sha256}"
    return url_id(metadata_url(dist))


def file_href(project: str, dist: DistFile, shown_name: str | None = None) -> str:
    """The proxy URL for `dist`; its last segment is the name the client must see."""
    name = shown_name or dist.filename
    shown = name if QUOTE_SAFE.fullmatch(name) else quote(name)
    return f"/files/{project}/{file_id(dist)}/{shown}"


# Labels joined by '+', optionally ended by one '+' (see `labels_segment`).
LABELS_RE = re.compile(r"^[0-9a-z_.]+(\+[0-9a-z_.]+)*\+?$")
# A path segment that clients collapse (RFC 3986 dot-segments): never one the proxy makes.
_DOT_SEGMENTS = frozenset({".", ".."})


def labels_segment(labels: tuple[str, ...]) -> str:
    """The URL segment naming a set of labels: sorted, joined by '+'. `.` and `..` are valid
    PEP 825 labels but dot-segments that pip, browsers and proxies collapse, so a segment that
    would be exactly one of them ends with a '+' (a label never holds one); other segments are
    unchanged, so every URL made before stays valid."""
    joined = "+".join(sorted(labels))
    return joined + "+" if joined in _DOT_SEGMENTS else joined


def parse_labels_segment(text: str) -> tuple[str, ...] | None:
    """The labels a segment made by `labels_segment` names, or None when it is malformed."""
    if not LABELS_RE.fullmatch(text):
        return None
    return tuple(text.removesuffix("+").split("+"))


def variants_json_href(project: str, dist: DistFile, labels: tuple[str, ...]) -> str:
    """The proxy URL of a variants.json served subset to `labels` (native view)."""
    return f"/variants-json/{project}/{file_id(dist)}/{labels_segment(labels)}/{dist.filename}"
