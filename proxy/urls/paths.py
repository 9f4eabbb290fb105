"""The proxy's page URL space, parsed (pure).

    [/native] [/p/{profile} | /hw/{spec}] /simple/ [{project}/]

`/p/...` and `/native` may come in either order. A path that fits nowhere is a `BadPath`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

PROJECT_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
PROFILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_SEGMENT = 512
# A detected machine's spec lists every CPU flag as `prop=` items: allow long /hw/ specs.
MAX_SPEC = 8192


class BadPath(ValueError):
    """A page path that is malformed; the message names the bad segment."""


@dataclass(frozen=True)
class PagePath:
    native: bool
    profile: str | None
    spec: str | None
    project: str | None  # None for the root project list
    trailing_slash: bool

    @property
    def depth(self) -> int:
        """Number of path segments, used to build relative links back to the root."""
        return (
            int(self.native)
            + (2 if self.profile or self.spec else 0)
            + 1
            + (1 if self.project else 0)
        )

    def prefix(self) -> str:
        parts = []
        if self.native:
            parts.append("native")
        if self.profile is not None:
            parts += ["p", self.profile]
        if self.spec is not None:
            parts += ["hw", self.spec]
        return "/" + "/".join([*parts, "simple"]) + "/"

    def with_project(self, project: str) -> str:
        return f"{self.prefix()}{project}/"


def parse_page_path(raw_path: str) -> PagePath | None:
    """Parse a request path; None when it is not a page path at all."""
    if not raw_path.startswith("/"):
        return None
    segments = raw_path.split("/")[1:]
    trailing = segments[-1] == ""
    if trailing:
        segments = segments[:-1]
    native = False
    profile: str | None = None
    spec: str | None = None
    position = 0
    while position < len(segments) and segments[position] != "simple":
        head = segments[position]
        if head == "native" and not native:
            native = True
            position += 1
        elif head in ("p", "hw") and profile is None and spec is None:
            value = _selector_value(head, segments[position + 1 : position + 2])
            profile, spec = (value, None) if head == "p" else (None, value)
            position += 2
        else:
            return None
    if position >= len(segments):
        return None
    return PagePath(native, profile, spec, _project_of(segments[position + 1 :]), trailing)


def _selector_value(head: str, following: list[str]) -> str:
    """The checked profile name (`head` "p") or hardware spec ("hw") after `/{head}/`."""
    if not following:
        raise BadPath(
            f"missing {'profile name' if head == 'p' else 'hardware spec'} after /{head}/"
        )
    value = unquote(following[0])
    if len(value) > (MAX_SEGMENT if head == "p" else MAX_SPEC):
        raise BadPath(f"/{head}/ segment too long ({len(value)} characters)")
    if not value or value in (".", ".."):
        raise BadPath(f"bad /{head}/ segment {value[:80]!r}")
    if head == "p" and not PROFILE_RE.fullmatch(value):
        raise BadPath(f"bad profile name {value[:80]!r}")
    return value


def _project_of(rest: list[str]) -> str | None:
    """The project name after `simple/` (None for the root list), checked."""
    if len(rest) > 1:
        raise BadPath(f"unexpected path after the project: {'/'.join(rest[1:])[:80]!r}")
    if not rest:
        return None
    project = unquote(rest[0])
    if len(project) > MAX_SEGMENT or not PROJECT_RE.fullmatch(project):
        raise BadPath(f"bad project name {project[:80]!r}")
    return project
