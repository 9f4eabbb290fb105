"""The one in-memory model of a simple-API project page, shared by parsing, rewriting and rendering.

Both PEP 503 HTML and PEP 691 JSON pages are read into these frozen dataclasses and
rendered back from them, so every other module deals with one shape only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# PEP 592: False (not yanked), True (yanked, no reason) or the reason text.
Yanked = bool | str
# PEP 658/714: False (no metadata file), True (present, no hashes) or its hashes.
CoreMetadata = bool | Mapping[str, str]


@dataclass(frozen=True, slots=True)
class DistFile:
    """One file of a project as an index lists it; `url` is absolute."""

    filename: str
    url: str
    hashes: Mapping[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: Yanked = False
    core_metadata: CoreMetadata = False
    gpg_sig: bool | None = None
    size: int | None = None
    upload_time: str | None = None
    # PEP 740: the provenance URL as given by the upstream, passed through untouched.
    provenance: str | None = None
    # Keys of a PEP 691 file entry that this model does not name, kept so they survive.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def with_url(self, url: str, provenance: str | None) -> DistFile:
        """This file listed at another URL: `dataclasses.replace`, a tenth of its cost (a
        page of 20k files is rewritten on every cold request)."""
        return DistFile(
            self.filename,
            url,
            self.hashes,
            self.requires_python,
            self.yanked,
            self.core_metadata,
            self.gpg_sig,
            self.size,
            self.upload_time,
            provenance,
            self.extra,
        )


@dataclass(frozen=True, slots=True)
class ProjectPage:
    """A project's page: its normalised name, its files in index order, PEP 700 versions."""

    name: str
    files: tuple[DistFile, ...]
    versions: tuple[str, ...] | None = None
    api_version: str = "1.1"
    # Top-level PEP 691 keys this model does not name (e.g. PEP 708 `tracks`), kept as given.
    extra: Mapping[str, Any] = field(default_factory=dict)
