"""What an offline proxy lists: only the files its cache holds (pure).

A client whose best build was not mirrored then gets the best one that was, never a link
that 404s. A file whose PEP 658 metadata is not held loses its `core-metadata` attribute
(pip 26 fails a whole install on an advertised metadata file that is missing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

from proxy.simple.model import DistFile
from proxy.upstreams.projects import Located, MergedProject
from proxy.urls.links import file_id

# Whether the cache holds a listed file (its bytes, or for a variants.json its cached body).
HoldsFile = Callable[[Located], bool]
# Whether the cache holds a listed file's PEP 658 metadata file.
HoldsMetadata = Callable[[DistFile], bool]


def held_only(
    merged: MergedProject, holds_file: HoldsFile, holds_metadata: HoldsMetadata
) -> MergedProject:
    """`merged` less every file the cache does not hold; its version names what is held."""
    kept: list[DistFile] = []
    files: dict[str, Located] = {}
    for dist in merged.page.files:
        ident = file_id(dist)
        located = merged.files.get(ident)
        if located is None or not holds_file(located):
            continue
        if dist.core_metadata and not holds_metadata(dist):
            dist = replace(dist, core_metadata=False)
            located = replace(located, dist=dist)
        kept.append(dist)
        files[ident] = located
    held_digest = hashlib.sha256(
        "\n".join(f"{d.filename} {bool(d.core_metadata)}" for d in kept).encode()
    ).hexdigest()[:16]
    return replace(
        merged,
        page=replace(merged.page, files=tuple(kept)),
        files=files,
        version=f"{merged.version}+held:{held_digest}",
        stale=False,
    )
