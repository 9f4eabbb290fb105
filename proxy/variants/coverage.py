"""Tag coverage (pure): does wheel X install in every environment in which wheel Y does?

CONTRACT.md "What a legacy client is shown", rule 3. Judged tag by tag: every tag of Y (each
tag of a compressed set) must be a tag of X or be *generalised* by one, a tag generalising
another when every environment that accepts the second accepts the first. The whole
`python-abi-platform` triple is judged, never one part alone.

The facts come from `packaging`: compressed tag sets are expanded by `packaging.tags.parse_tag`,
the legacy manylinux aliases are packaging's own map, and which macOS machines accept a
platform is read off `packaging.tags.mac_platforms` for every (version, arch) pair. The rules
for the python and abi parts follow how `packaging.tags.cpython_tags` / `generic_tags` /
`compatible_tags` build an interpreter's list. The answer is sound, never complete: when in
doubt a tag is generalised only by itself, so a wheel is at worst listed once too often.

`requires_python_admits` is the other half of rule 3: a covering wheel's `requires-python`
must admit every Python the covered one's does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from packaging._manylinux import _LEGACY_MANYLINUX_MAP
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, mac_platforms, parse_tag
from packaging.version import InvalidVersion, Version

# `cp312`, `pp310`, `py3`, `py311`: an interpreter abbreviation and its version digits.
_INTERPRETER_RE = re.compile(r"(?P<name>py|cp|pp)(?P<major>\d)(?P<minor>\d*)")
_MANYLINUX_RE = re.compile(r"manylinux_(\d+)_(\d+)_(.+)")
_MUSLLINUX_RE = re.compile(r"musllinux_(\d+)_(\d+)_(.+)")

# packaging's own alias map ((2, 17) -> "manylinux2014", ...); its keys are (major, minor)
# tuples in every packaging release this project accepts (a NamedTuple from 25 on).
_LEGACY_MANYLINUX = {
    f"{alias}_": (int(version[0]), int(version[1]))
    for version, alias in _LEGACY_MANYLINUX_MAP.items()
}
# packaging lists glibc levels below 2.17 only for these (`_manylinux._is_compatible`).
_OLD_GLIBC_ARCHS = frozenset({"x86_64", "i686"})
_FIRST_GLIBC_ELSEWHERE = (2, 17)
# The macOS machines the acceptance sets are computed over (every arch packaging knows).
_MAC_ARCHS = ("x86_64", "arm64", "i386", "ppc", "ppc64")
_MAC_NEWEST_MAJOR = 40
# PEP 384: the stable ABI starts at 3.2 (`packaging.tags._abi3_applies`).
_FIRST_ABI3 = (3, 2)


# --- platforms -----------------------------------------------------------------------------


def _glibc_level(platform: str) -> tuple[tuple[int, int], str] | None:
    """`manylinux_2_17_x86_64` / `manylinux2014_x86_64` -> ((2, 17), 'x86_64')."""
    for prefix, version in _LEGACY_MANYLINUX.items():
        if platform.startswith(prefix):
            return version, platform[len(prefix) :]
    match = _MANYLINUX_RE.fullmatch(platform)
    if match is None:
        return None
    return (int(match[1]), int(match[2])), match[3]


def _accepted_glibc(level: tuple[int, int], arch: str) -> bool:
    """packaging never lists a glibc level below 2.17 outside x86_64 and i686."""
    return arch in _OLD_GLIBC_ARCHS or level >= _FIRST_GLIBC_ELSEWHERE


def _musl_level(platform: str) -> tuple[tuple[int, int], str] | None:
    match = _MUSLLINUX_RE.fullmatch(platform)
    if match is None:
        return None
    return (int(match[1]), int(match[2])), match[3]


def _linux_arch(platform: str) -> str | None:
    """The architecture of a manylinux or musllinux tag (what `linux_ARCH` generalises)."""
    parsed = _glibc_level(platform) or _musl_level(platform)
    if parsed is None:
        return None
    level, arch = parsed
    if platform.startswith("many") and not _accepted_glibc(level, arch):
        return None
    return arch


@functools.cache
def _mac_acceptance() -> dict[str, frozenset[tuple[tuple[int, int], str]]]:
    """Every macOS platform tag packaging knows -> the (version, arch) machines accepting it."""
    versions = [(10, minor) for minor in range(17)]
    versions += [(major, 0) for major in range(11, _MAC_NEWEST_MAJOR + 1)]
    accepted: dict[str, set[tuple[tuple[int, int], str]]] = {}
    for version in versions:
        for arch in _MAC_ARCHS:
            for platform in mac_platforms(version, arch):
                accepted.setdefault(platform, set()).add((version, arch))
    return {platform: frozenset(machines) for platform, machines in accepted.items()}


def _mac_generalises(general: str, specific: str) -> bool:
    accepted = _mac_acceptance()
    machines = accepted.get(specific)
    if not machines:
        return False
    return machines <= accepted.get(general, frozenset())


def platform_generalises(general: str, specific: str) -> bool:
    """Every machine that accepts platform `specific` accepts platform `general`."""
    if general == specific:
        return True
    if general.startswith("macosx_") and specific.startswith("macosx_"):
        return _mac_generalises(general, specific)
    if general.startswith("linux_"):
        return _linux_arch(specific) == general[len("linux_") :]
    for read in (_glibc_level, _musl_level):
        general_level, specific_level = read(general), read(specific)
        if general_level is not None and specific_level is not None:
            (low, arch), (high, other_arch) = general_level, specific_level
            usable = read is _musl_level or _accepted_glibc(low, arch)
            return usable and arch == other_arch and low[0] == high[0] and low <= high
    return False


# --- interpreters and abis -----------------------------------------------------------------


def _interpreter(tag: str) -> tuple[str, int, int | None] | None:
    """`cp312` -> ('cp', 3, 12); `py3` -> ('py', 3, None); other interpreters -> None."""
    match = _INTERPRETER_RE.fullmatch(tag)
    if match is None:
        return None
    minor = int(match["minor"]) if match["minor"] else None
    return match["name"], int(match["major"]), minor


def _python_version(interpreter: str) -> tuple[int, int] | None:
    """The Python version every environment accepting this interpreter tag runs at least."""
    parsed = _interpreter(interpreter)
    if parsed is None or parsed[2] is None:
        return None
    return parsed[1], parsed[2]


def _valid_pair(interpreter: str, abi: str) -> bool:
    """A `py*` interpreter only ever comes with abi `none` (`py3-cp312-P` is accepted nowhere)."""
    parsed = _interpreter(interpreter)
    return parsed is not None and (parsed[0] != "py" or abi == "none")


def _generic_python_generalises(general: str, interpreter: str, abi: str) -> bool:
    """`py3-none` and `py3M-none` against a valid (interpreter, abi) pair."""
    parsed_general = _interpreter(general)
    parsed = _interpreter(interpreter)
    if parsed_general is None or parsed is None or parsed_general[1] != 3 or parsed[1] != 3:
        return False
    if parsed_general[2] is None:  # py3: every Python 3 environment
        return True
    version = _python_version(interpreter)
    # cp3N-abi3 runs on 3.N and later only; every other pair on 3.N only, or 3.N and later.
    return version is not None and parsed_general[2] <= version[1]


def _abi3_generalises(general: str, interpreter: str, abi: str) -> bool:
    """`cp3M-abi3`: cp3N-abi3 and cp3N-cp3N (M <= N), cp3N-none up to 3.12, never `cp3Nt`."""
    general_version = _python_version(general)
    version = _python_version(interpreter)
    if not general.startswith("cp") or not interpreter.startswith("cp"):
        return False
    if general_version is None or version is None:
        return False
    if general_version < _FIRST_ABI3 or general_version > version:
        return False
    if abi in ("abi3", interpreter):
        return True
    return abi == "none" and version <= (3, 12)


def pair_generalises(general: tuple[str, str], specific: tuple[str, str]) -> bool:
    """Every interpreter accepting `specific` (python, abi) on a platform accepts `general`."""
    if general == specific:
        return True
    (general_interpreter, general_abi), (interpreter, abi) = general, specific
    if not _valid_pair(interpreter, abi) or not _valid_pair(general_interpreter, general_abi):
        return False
    if general_abi == "abi3":
        return _abi3_generalises(general_interpreter, interpreter, abi)
    if general_abi != "none":
        return False
    if general_interpreter.startswith("py"):
        return _generic_python_generalises(general_interpreter, interpreter, abi)
    # `I-none`: I's own ABIs (cp312-cp312, cp313-cp313t, pp310-pypy310_pp73), not abi3.
    return general_interpreter == interpreter and not abi.startswith("abi3")


# --- whole tags and wheels -----------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def tag_generalises(general: Tag, specific: Tag) -> bool:
    """Every environment whose tag list holds `specific` also holds `general`."""
    if general == specific:
        return True
    pair = (general.interpreter, general.abi)
    specific_pair = (specific.interpreter, specific.abi)
    if general.platform == "any":
        # With the platform `any` only abi `none` counts, and then on every platform.
        return general.abi == "none" and pair_generalises(pair, specific_pair)
    if specific.platform == "any":
        return False
    return pair_generalises(pair, specific_pair) and platform_generalises(
        general.platform, specific.platform
    )


@functools.lru_cache(maxsize=4096)
def expand_tags(python_tag: str, abi_tag: str, platform_tag: str) -> frozenset[Tag]:
    """A wheel's compressed tag set as single tags (`py2.py3-none-any` -> two tags)."""
    return parse_tag(f"{python_tag}-{abi_tag}-{platform_tag}")


@functools.lru_cache(maxsize=16384)
def tags_cover(general: frozenset[Tag], specific: frozenset[Tag]) -> bool:
    """Each tag of `specific` is a tag of `general` or is generalised by one of them."""
    return all(any(tag_generalises(candidate, tag) for candidate in general) for tag in specific)


# --- requires-python -----------------------------------------------------------------------


def _specifier(text: str | None) -> SpecifierSet | None:
    """None for "every Python"; an unreadable specifier is kept as an exact string match."""
    if text is None or not text.strip():
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return SpecifierSet()  # unreadable: compared as text below


def _probe_versions(specifiers: Iterable[SpecifierSet]) -> list[Version]:
    """Python versions probing every region the specifiers' boundaries cut out: each
    boundary, its neighbours, and a grid of minors (installers check X.Y.Z, no pre-releases)."""
    majors = {2, 3, 4}
    minors = set(range(0, 41))
    micros = {0, 1, 999}
    for specifier_set in specifiers:
        for specifier in specifier_set:
            try:
                parts = Version(specifier.version.rstrip(".*")).release
            except InvalidVersion:
                continue
            majors.update({parts[0], parts[0] + 1})
            if len(parts) > 1:
                minors.update({parts[1], parts[1] + 1, max(parts[1] - 1, 0)})
            if len(parts) > 2:
                micros.update({parts[2], parts[2] + 1, max(parts[2] - 1, 0)})
    return [
        Version(f"{major}.{minor}.{micro}")
        for major in sorted(majors)
        for minor in sorted(minors)
        for micro in sorted(micros)
    ]


@functools.lru_cache(maxsize=4096)
def requires_python_admits(general: str | None, specific: str | None) -> bool:
    """`general` admits every Python version that `specific` admits (does not narrow it)."""
    general_set, specific_set = _specifier(general), _specifier(specific)
    if general_set is None:
        return True
    if general == specific:
        return True
    if specific_set is None or not str(general_set) or not str(specific_set):
        return False
    return all(
        general_set.contains(version)
        for version in _probe_versions((general_set, specific_set))
        if specific_set.contains(version)
    )
