"""Tag coverage (CONTRACT.md rule 3): the contract's corners one by one, then a soundness check
against the tag lists `packaging.tags` builds for many simulated machines and interpreters:
whenever `tag_generalises(g, s)`, every environment that accepts `s` accepts `g`."""

from __future__ import annotations

import random

import pytest
from packaging.tags import Tag, compatible_tags, cpython_tags, generic_tags, mac_platforms

from proxy.variants.coverage import (
    expand_tags,
    platform_generalises,
    requires_python_admits,
    tag_generalises,
    tags_cover,
)


def tag(text: str) -> Tag:
    (single,) = expand_tags(*text.split("-"))
    return single


@pytest.mark.parametrize(
    ("general", "specific", "expected"),
    [
        ("py3-none-any", "cp312-cp312-win_amd64", True),
        ("py3-none-any", "cp313-cp313t-manylinux_2_17_x86_64", True),
        ("py3-none-any", "pp310-pypy310_pp73-win_amd64", True),
        ("py3-none-win_amd64", "cp312-abi3-win_amd64", True),
        ("py3-none-win_amd64", "cp312-cp312-win32", False),
        ("py311-none-any", "cp312-cp312-win_amd64", True),
        ("py313-none-any", "cp312-cp312-win_amd64", False),
        ("py311-none-any", "py312-none-any", True),
        ("py312-none-any", "py3-none-any", False),
        # I-none: the interpreter's own ABIs, free-threaded too, never abi3
        ("cp312-none-any", "cp312-cp312-win_amd64", True),
        ("cp313-none-win_amd64", "cp313-cp313t-win_amd64", True),
        ("pp310-none-any", "pp310-pypy310_pp73-manylinux_2_17_x86_64", True),
        ("cp312-none-any", "cp312-abi3-win_amd64", False),
        ("cp312-none-any", "cp313-cp313-win_amd64", False),
        # abi3 against cp3N-cp3N, cp3N-none up to 3.12, never free-threaded
        ("cp39-abi3-win_amd64", "cp312-cp312-win_amd64", True),
        ("cp39-abi3-win_amd64", "cp311-abi3-win_amd64", True),
        ("cp312-abi3-win_amd64", "cp311-cp311-win_amd64", False),
        ("cp39-abi3-win_amd64", "cp313-cp313t-win_amd64", False),
        ("cp39-abi3-win_amd64", "cp312-none-win_amd64", True),
        ("cp39-abi3-win_amd64", "cp313-none-win_amd64", False),
        ("cp39-abi3-win_amd64", "pp310-pypy310_pp73-win_amd64", False),
        # the whole triple: pairs accepted nowhere generalise nothing
        ("cp312-cp312-any", "cp312-cp312-win_amd64", False),
        ("py3-cp312-win_amd64", "cp312-cp312-win_amd64", False),
        ("cp312-cp312-win_amd64", "cp312-cp312-win32", False),
        # platforms
        ("cp312-cp312-manylinux2014_x86_64", "cp312-cp312-manylinux_2_28_x86_64", True),
        ("cp312-cp312-manylinux_2_28_x86_64", "cp312-cp312-manylinux2014_x86_64", False),
        ("cp312-cp312-manylinux1_x86_64", "cp312-cp312-manylinux2010_x86_64", True),
        ("cp312-cp312-manylinux1_aarch64", "cp312-cp312-manylinux_2_17_aarch64", False),
        ("cp312-cp312-musllinux_1_1_x86_64", "cp312-cp312-musllinux_1_2_x86_64", True),
        ("cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-musllinux_1_2_x86_64", False),
        ("cp312-cp312-linux_x86_64", "cp312-cp312-manylinux_2_17_x86_64", True),
        ("cp312-cp312-linux_x86_64", "cp312-cp312-musllinux_1_2_x86_64", True),
        ("cp312-cp312-linux_x86_64", "cp312-cp312-manylinux_2_17_aarch64", False),
        ("cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-linux_x86_64", False),
        ("cp312-cp312-macosx_10_9_universal2", "cp312-cp312-macosx_11_0_arm64", True),
        ("cp312-cp312-macosx_10_9_universal2", "cp312-cp312-macosx_10_9_x86_64", True),
        ("cp312-cp312-macosx_10_9_x86_64", "cp312-cp312-macosx_10_9_universal2", False),
        ("cp312-cp312-macosx_11_0_arm64", "cp312-cp312-macosx_14_0_arm64", True),
        ("cp312-cp312-macosx_14_0_arm64", "cp312-cp312-macosx_11_0_arm64", False),
        ("cp312-cp312-macosx_10_9_intel", "cp312-cp312-macosx_10_12_x86_64", True),
        ("cp312-cp312-macosx_11_0_x86_64", "cp312-cp312-macosx_11_0_arm64", False),
        ("cp312-cp312-win_amd64", "cp312-cp312-win_amd64", True),
        ("cp312-cp312-win32", "cp312-cp312-win_amd64", False),
    ],
)
def test_contract_corners(general: str, specific: str, expected: bool) -> None:
    assert tag_generalises(tag(general), tag(specific)) is expected


def test_compressed_sets_cover_tag_by_tag() -> None:
    both = expand_tags("cp312", "cp312", "manylinux_2_17_x86_64.manylinux2014_x86_64")
    assert len(both) == 2
    assert tags_cover(expand_tags("cp312", "cp312", "manylinux2014_x86_64"), both)
    assert not tags_cover(expand_tags("cp312", "cp312", "manylinux_2_28_x86_64"), both)
    # each tag of the covered set needs a cover: py2.py3 is not covered by py3 alone
    assert not tags_cover(expand_tags("py3", "none", "any"), expand_tags("py2.py3", "none", "any"))
    assert tags_cover(expand_tags("py2.py3", "none", "any"), expand_tags("py3", "none", "any"))


@pytest.mark.parametrize(
    ("general", "specific", "admits"),
    [
        (None, ">=3.12", True),
        (">=3.8", ">=3.12", True),
        (">=3.12", ">=3.8", False),
        (">=3.8", None, False),
        (">=3.8,!=3.9.*", ">=3.10", True),
        (">=3.8,!=3.9.*", ">=3.9", False),
        ("~=3.10", ">=3.11,<4", True),
        ("<3.13", ">=3.12", False),
        (">=3.8", ">=3.8", True),
        (">=3.12.1", ">=3.12", False),
    ],
)
def test_requires_python_does_not_narrow(
    general: str | None, specific: str | None, admits: bool
) -> None:
    assert requires_python_admits(general, specific) is admits


# --- soundness against simulated environments ----------------------------------------------


def _glibc(level: int, arch: str) -> list[str]:
    aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    lowest = 5 if arch in ("x86_64", "i686") else 17
    tags = [f"linux_{arch}"]
    for minor in range(level, lowest - 1, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in aliases:
            tags.append(f"{aliases[minor]}_{arch}")
    return tags


def _machines() -> list[list[str]]:
    machines = [_glibc(level, "x86_64") for level in (5, 12, 17, 28, 39)]
    machines += [_glibc(level, "aarch64") for level in (17, 28, 39)]
    machines += [[f"linux_{a}", *(f"musllinux_1_{m}_{a}" for m in (2, 1, 0))] for a in ("x86_64",)]
    machines += [["linux_aarch64", "musllinux_1_1_aarch64", "musllinux_1_0_aarch64"]]
    for version in [(10, 9), (10, 15), (11, 0), (14, 0), (15, 0)]:
        for arch in ("x86_64", "arm64"):
            machines.append(list(mac_platforms(version, arch)))
    machines += [["win_amd64"], ["win32"], ["win_arm64"]]
    return machines


def _environments() -> list[frozenset[Tag]]:
    environments = []
    for platforms in _machines():
        for minor in range(7, 15):
            abis = [f"cp3{minor}{'m' if minor < 8 else ''}"]
            builds = [abis] + ([[f"cp3{minor}t"]] if minor >= 13 else [])
            for build in builds:
                own = cpython_tags((3, minor), build, platforms)
                rest = compatible_tags((3, minor), f"cp3{minor}", platforms)
                environments.append(frozenset([*own, *rest]))
        for minor in (9, 10, 11):
            own = generic_tags(f"pp3{minor}", [f"pypy3{minor}_pp73"], platforms)
            rest = compatible_tags((3, minor), f"pp3{minor}", platforms)
            environments.append(frozenset([*own, *rest]))
    return environments


def test_generalisation_is_sound_for_every_simulated_environment() -> None:
    environments = _environments()
    accepted_by: dict[Tag, int] = {}
    for index, environment in enumerate(environments):
        for accepted in environment:
            accepted_by[accepted] = accepted_by.get(accepted, 0) | (1 << index)
    odd = [
        tag(text)
        for text in (
            "cp312-cp312-any",
            "py3-cp312-win_amd64",
            "cp312-abi3-any",
            "py3-none-manylinux1_aarch64",
            "cp312-cp312-manylinux1_aarch64",
            "cp312-cp312-macosx_11_3_arm64",
            "cp313-cp313t-win_amd64",
        )
    ]
    sample = random.Random(825).sample(sorted(accepted_by, key=str), 700)
    pool = sorted(set(sample) | set(odd), key=str)
    generalisations = 0
    for general in pool:
        general_mask = accepted_by.get(general, 0)
        for specific in pool:
            if tag_generalises(general, specific):
                generalisations += 1
                specific_mask = accepted_by.get(specific, 0)
                assert specific_mask & ~general_mask == 0, f"{general} does not cover {specific}"
    assert generalisations > len(pool), "the check exercised real generalisations"


def test_platform_generalisation_is_read_from_packaging_for_macos() -> None:
    # every macOS 14 arm64 machine runs a macosx_11_0 universal2 or arm64 build
    assert platform_generalises("macosx_11_0_universal2", "macosx_14_0_arm64")
    assert not platform_generalises("macosx_11_0_arm64", "macosx_11_0_universal2")
