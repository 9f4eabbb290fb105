"""Simulated client environments (pure): the tag lists real interpreters on common machines
build with `packaging.tags`, and what pip and a PEP 825 installer pick from a page there.

`variant-proxy explain` uses them to show the decision per platform and python group and to
name the environments where no page can make pip agree (CONTRACT.md rule 5). The machines are
what `packaging.tags.sys_tags()` lists on them; glibc and musl levels are spelled out the way
`packaging._manylinux` / `_musllinux` list them (the running system decides there, so a
simulated machine states its own level).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packaging._manylinux import _LEGACY_MANYLINUX_MAP
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, generic_tags, mac_platforms
from packaging.version import Version

from proxy.simple.filenames import parse_wheel_filename
from proxy.simple.model import DistFile
from proxy.variants.coverage import expand_tags

_LEGACY_ALIASES = {
    (int(version[0]), int(version[1])): alias for version, alias in _LEGACY_MANYLINUX_MAP.items()
}


def glibc_platforms(glibc: tuple[int, int], arch: str, *, linux_first: bool = True) -> list[str]:
    """A glibc machine's platform tags, most preferred first (packaging's `_linux_platforms`;
    packaging 26 and pip 26 put `linux_ARCH` first, older ones last)."""
    lowest = 5 if arch in ("x86_64", "i686") else 17
    many: list[str] = []
    for minor in range(glibc[1], lowest - 1, -1):
        many.append(f"manylinux_{glibc[0]}_{minor}_{arch}")
        alias = _LEGACY_ALIASES.get((glibc[0], minor))
        if alias is not None:
            many.append(f"{alias}_{arch}")
    return [f"linux_{arch}", *many] if linux_first else [*many, f"linux_{arch}"]


def musl_platforms(musl: tuple[int, int], arch: str, *, linux_first: bool = True) -> list[str]:
    """A musl machine's platform tags, most preferred first."""
    musl_tags = [f"musllinux_{musl[0]}_{minor}_{arch}" for minor in range(musl[1], -1, -1)]
    return [f"linux_{arch}", *musl_tags] if linux_first else [*musl_tags, f"linux_{arch}"]


@dataclass(frozen=True)
class Machine:
    """An operating system and architecture, by the platform tags it accepts (best first)."""

    name: str
    platforms: tuple[str, ...]


@dataclass(frozen=True)
class Python:
    """An interpreter: CPython (optionally free-threaded) or PyPy, at a Python version."""

    implementation: str  # "cp" or "pp"
    version: tuple[int, int]
    free_threaded: bool = False

    @property
    def name(self) -> str:
        flag = "t" if self.free_threaded else ""
        label = "PyPy " if self.implementation == "pp" else ""
        return f"{label}{self.version[0]}.{self.version[1]}{flag}"

    def tags(self, platforms: Sequence[str]) -> list[Tag]:
        """What `packaging.tags.sys_tags()` lists for this interpreter on these platforms."""
        nodot = f"{self.version[0]}{self.version[1]}"
        if self.implementation == "pp":
            abi = f"pypy{nodot}_pp73"
            own = list(generic_tags(f"pp{nodot}", [abi], platforms))
        else:
            abi = f"cp{nodot}{'t' if self.free_threaded else ''}"
            own = list(cpython_tags(self.version, [abi], platforms))
        interpreter = f"{self.implementation}{nodot}"
        return own + list(compatible_tags(self.version, interpreter, platforms))


@dataclass(frozen=True)
class Environment:
    machine: Machine
    python: Python
    tags: tuple[Tag, ...]

    @property
    def name(self) -> str:
        return f"{self.machine.name}, Python {self.python.name}"

    def priority(self, tags: Iterable[Tag]) -> int | None:
        """pip's rank of a wheel here: the position of its most preferred tag (lower wins)."""
        positions = self._positions()
        found = [positions[tag] for tag in tags if tag in positions]
        return min(found) if found else None

    def admits(self, requires_python: str | None) -> bool:
        if not requires_python:
            return True
        try:
            specifier = SpecifierSet(requires_python)
        except InvalidSpecifier:
            return True  # installers ignore what they cannot read
        return specifier.contains(Version(f"{self.python.version[0]}.{self.python.version[1]}.0"))

    def _positions(self) -> dict[Tag, int]:
        cached: dict[Tag, int] | None = self.__dict__.get("_cache")
        if cached is None:
            cached = {}
            for position, tag in enumerate(self.tags):
                cached.setdefault(tag, position)
            object.__setattr__(self, "_cache", cached)
        return cached


COMMON_MACHINES: tuple[Machine, ...] = (
    Machine("linux x86_64 glibc 2.17", tuple(glibc_platforms((2, 17), "x86_64"))),
    Machine("linux x86_64 glibc 2.28", tuple(glibc_platforms((2, 28), "x86_64"))),
    Machine("linux x86_64 glibc 2.39", tuple(glibc_platforms((2, 39), "x86_64"))),
    Machine("linux aarch64 glibc 2.28", tuple(glibc_platforms((2, 28), "aarch64"))),
    Machine("linux x86_64 musl 1.2", tuple(musl_platforms((1, 2), "x86_64"))),
    Machine("macOS 11 x86_64", tuple(mac_platforms((11, 0), "x86_64"))),
    Machine("macOS 14 arm64", tuple(mac_platforms((14, 0), "arm64"))),
    Machine("windows amd64", ("win_amd64",)),
)

COMMON_PYTHONS: tuple[Python, ...] = (
    *(Python("cp", (3, minor)) for minor in range(9, 15)),
    Python("cp", (3, 13), free_threaded=True),
    Python("pp", (3, 10)),
)


@functools.cache
def _environments(
    machines: tuple[Machine, ...], pythons: tuple[Python, ...]
) -> tuple[Environment, ...]:
    return tuple(
        Environment(machine, python, tuple(python.tags(machine.platforms)))
        for machine in machines
        for python in pythons
    )


def environments(
    machines: Sequence[Machine] = COMMON_MACHINES, pythons: Sequence[Python] = COMMON_PYTHONS
) -> tuple[Environment, ...]:
    """Every machine with every Python, tag lists built once."""
    return _environments(tuple(machines), tuple(pythons))


# --- what each installer picks -------------------------------------------------------------


@dataclass(frozen=True)
class Wheel:
    """A wheel as an installer sees it: its file, parsed tags, build tag and rank."""

    dist: DistFile
    tags: frozenset[Tag]
    build: tuple[int, str]
    rank: int = 0  # the PEP 825 rank (legacy view candidates); pip ignores it

    @classmethod
    def of(cls, dist: DistFile, rank: int = 0) -> Wheel:
        wheel = parse_wheel_filename(dist.filename)
        build_match = re.match(r"(\d+)(.*)", wheel.build_tag or "")
        build = (int(build_match[1]), build_match[2]) if build_match else (-1, "")
        return cls(
            dist, expand_tags(wheel.python_tag, wheel.abi_tag, wheel.platform_tag), build, rank
        )


def _installable(environment: Environment, wheels: Iterable[Wheel]) -> list[tuple[int, Wheel]]:
    found = []
    for wheel in wheels:
        priority = environment.priority(wheel.tags)
        if priority is None or wheel.dist.yanked is not False:
            continue
        if environment.admits(wheel.dist.requires_python):
            found.append((priority, wheel))
    return found


def pip_pick(environment: Environment, listed: Sequence[Wheel]) -> Wheel | None:
    """pip's wheel from a page: best tag, then highest build tag; of equal ones the last listed
    (its resolver walks the stable-sorted candidates in reverse). Unpinned: yanked skipped."""
    best: tuple[tuple[int, tuple[int, str]], Wheel] | None = None
    for priority, wheel in _installable(environment, listed):
        key = (-priority, wheel.build)
        if best is None or key >= best[0]:
            best = (key, wheel)
    return best[1] if best is not None else None


def pep825_pick(environment: Environment, candidates: Sequence[Wheel]) -> Wheel | None:
    """A PEP 825 installer's wheel: the best rank (variant order, null, non-variant), then
    the best tag, then the highest build tag."""
    found = _installable(environment, candidates)
    if not found:
        return None
    return min(found, key=lambda item: (item[1].rank, item[0], -item[1].build[0]))[1]
