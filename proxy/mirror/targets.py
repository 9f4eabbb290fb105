"""What a mirror is made for: the target matrix and the resolver's answer for one target (pure).

A target is one fingerprint (a profile, a hardware spec, or none) with one Python version and
one platform. Each is resolved against the proxy's own page for that fingerprint, so the
files are the ones the server selects.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

# Wheel platform tags that name one of uv's `--python-platform` targets.
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(x86_64|aarch64)$")
_LEGACY_MANYLINUX = {"manylinux2014": "2_17", "manylinux2010": "2_12", "manylinux1": "2_5"}
_OTHER_TAGS = {
    "linux_x86_64": "x86_64-unknown-linux-gnu",
    "linux_aarch64": "aarch64-unknown-linux-gnu",
    "win_amd64": "x86_64-pc-windows-msvc",
    "win_arm64": "aarch64-pc-windows-msvc",
    "win32": "i686-pc-windows-msvc",
}
_MUSL = re.compile(r"^musllinux_\d+_\d+_(x86_64|aarch64)$")
_MACOS = re.compile(r"^macosx_\d+_\d+_(x86_64|arm64|universal2)$")
_PYTHON = re.compile(r"^3\.\d{1,2}$")


class TargetError(ValueError):
    """A bad target option (Python version, platform, spec), naming it."""


@dataclass(frozen=True)
class Fingerprint:
    """How a target's hardware is named in the proxy's URL space."""

    kind: str  # "profile", "hw" or "none"
    value: str = ""

    @property
    def index_path(self) -> str:
        if self.kind == "profile":
            return f"/p/{quote(self.value, safe='')}/simple/"
        if self.kind == "hw":
            return f"/hw/{quote(self.value, safe='=,:.')}/simple/"
        return "/simple/"

    @property
    def label(self) -> str:
        return f"{self.kind}={self.value}" if self.kind != "none" else "no fingerprint"


@dataclass(frozen=True)
class Target:
    fingerprint: Fingerprint
    python: str
    platform: str | None  # uv's --python-platform name; None = this machine's

    @property
    def label(self) -> str:
        where = self.platform or "this platform"
        return f"{self.fingerprint.label}, Python {self.python}, {where}"


def uv_platform(tag: str) -> str:
    """uv's `--python-platform` name for a wheel platform tag, or the name itself when it is
    one of uv's (`x86_64-manylinux_2_28`, `linux`, `aarch64-apple-darwin`, ...)."""
    text = tag.strip()
    if (match := _MANYLINUX.match(text)) is not None:
        return f"{match.group(3)}-manylinux_{match.group(1)}_{match.group(2)}"
    for legacy, version in _LEGACY_MANYLINUX.items():
        for arch in ("x86_64", "aarch64"):
            if text == f"{legacy}_{arch}":
                return f"{arch}-manylinux_{version}"
    if text in _OTHER_TAGS:
        return _OTHER_TAGS[text]
    if (match := _MUSL.match(text)) is not None:
        return f"{match.group(1)}-unknown-linux-musl"
    if (match := _MACOS.match(text)) is not None:
        return "x86_64-apple-darwin" if match.group(1) == "x86_64" else "aarch64-apple-darwin"
    if re.fullmatch(r"[a-z0-9_.-]{2,64}", text):
        return text
    raise TargetError(f"bad platform {tag[:80]!r}")


def target_matrix(
    profiles: Sequence[str],
    specs: Sequence[str],
    pythons: Sequence[str],
    platforms: Sequence[str],
    default_python: str,
) -> list[Target]:
    """Every combination of fingerprint x Python x platform, in the order given."""
    fingerprints = [Fingerprint("profile", p) for p in profiles] + [
        Fingerprint("hw", s) for s in specs
    ]
    for python in pythons:
        if not _PYTHON.match(python):
            raise TargetError(f"bad Python version {python[:20]!r}: expected 3.X")
    resolved_platforms: list[str | None] = [uv_platform(p) for p in platforms] or [None]
    return [
        Target(fingerprint, python, platform)
        for fingerprint, python, platform in itertools.product(
            fingerprints or [Fingerprint("none")],
            list(dict.fromkeys(pythons)) or [default_python],
            list(dict.fromkeys(resolved_platforms)),
        )
    ]


@dataclass(frozen=True)
class PinnedFile:
    """One file the resolver chose: its proxy URL and sha256."""

    project: str
    version: str
    url: str
    sha256: str | None


class LockError(ValueError):
    """The resolver's lock file could not be read."""


def files_of_lock(text: str) -> list[PinnedFile]:
    """The files a PEP 751 lock (`pylock.toml`, as uv writes it) names: every wheel of each
    package, or its sdist when it has no wheel."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"unreadable lock file: {exc}") from None
    pinned: list[PinnedFile] = []
    for package in document.get("packages", []):
        name, version = str(package.get("name", "")), str(package.get("version", ""))
        entries = package.get("wheels") or ([package["sdist"]] if "sdist" in package else [])
        for entry in entries:
            url = entry.get("url")
            if not isinstance(url, str):
                raise LockError(f"{name} {version}: a file without a URL")
            sha256 = entry.get("hashes", {}).get("sha256")
            pinned.append(PinnedFile(name, version, url, sha256))
    return pinned
