"""The root project list (`/simple/`), built in full: parse every upstream's list, merge the
names in priority order, render both formats (pure).

A big index (hundreds of thousands of projects) costs a second or two of CPU in C calls that
hold the GIL, so the server runs `build_index` in a worker process: the event loop only
moves the bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proxy.simple.api import (
    normalize_name,
    parse_project_index,
    render_index_html,
    render_index_json,
)


@dataclass(frozen=True)
class BuiltIndex:
    project_count: int
    html: bytes
    json: bytes


def merge_names(name_lists: Sequence[Sequence[str]]) -> list[str]:
    """Names in priority order; a name a higher upstream has (normalised) is not repeated."""
    seen: set[str] = set()
    names: list[str] = []
    for name_list in name_lists:
        for name in name_list:
            key = normalize_name(name)
            if key not in seen:
                seen.add(key)
                names.append(name)
    return names


def build_index(sources: Sequence[tuple[bytes, str]]) -> BuiltIndex:
    """`sources` are (body, content type) of each upstream's list, highest priority first;
    raises `PageFormatError` naming the problem when one cannot be read."""
    names = merge_names([parse_project_index(body, kind) for body, kind in sources])
    return BuiltIndex(len(names), render_index_html(names), render_index_json(names))
