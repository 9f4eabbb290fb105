"""Shared by the mirror e2e modules: a dependency tree with variant wheels, mirrored for two
hardware profiles x two Pythons, exported and imported into a fresh cache once per session
(`mirrored`), a cache holding part of it (`partial_cache`), and a snapshot of a cache."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from .builders import BuiltDist, build_wheel
from .proxy_process import proxy_config, run_proxy_cli
from .upstream_server import UpstreamServer
from .variant_support import VariantWheelhouse, build_variant_wheelhouse
from .variant_support import publish_variants as publish_vpkg

HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
OTHER_PYTHON = "3.12" if HOST_PYTHON != "3.12" else "3.11"
PLATFORM = "manylinux_2_28_x86_64"
PROFILES = {"gpu": {"hw": "cpu=x86_64_v3,cuda=12.8,sm=9.0"}, "v3cpu": {"hw": "cpu=x86_64_v3"}}
EXPECTED_BUILD = {"gpu": "cu128", "v3cpu": "x86_64_v3"}


@dataclass(frozen=True)
class Tree:
    house: VariantWheelhouse
    dists: dict[str, BuiltDist]


@dataclass(frozen=True)
class Mirrored:
    tree: Tree
    upstream: UpstreamServer
    config: Path  # its cache dir: the mirror
    mirror_cache: Path
    imported_cache: Path
    bundle: Path
    mirror_output: str


def build_tree(root: Path) -> Tree:
    """`mapp` needs `vpkg` (variant wheels) and `deplib`; `deplib` needs `shim` only on the
    other Python, so a resolver that evaluates markers for the running Python gets it wrong."""
    house = build_variant_wheelhouse(root / "vpkg")
    plain = root / "plain"
    dists = {
        "mapp": build_wheel(plain, "mapp", "1.0", requires_dist=["vpkg>=1.0", "deplib"]),
        "deplib": build_wheel(
            plain, "deplib", "1.0", requires_dist=[f'shim; python_version == "{OTHER_PYTHON}"']
        ),
        "shim": build_wheel(plain, "shim", "1.0"),
    }
    return Tree(house, dists)


def write_config(path: Path, cache_dir: Path, upstream: UpstreamServer, **cache: Any) -> Path:
    config = proxy_config(cache_dir, [("up", upstream)], cache=cache, profiles=PROFILES)
    path.write_text(tomli_w.dumps(config))
    return path


def cli(*args: str | Path, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    return run_proxy_cli([str(a) for a in args], timeout=timeout)


@pytest.fixture(scope="session")
def mirrored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirrored]:
    root = tmp_path_factory.mktemp("mirror")
    tree = build_tree(root / "house")
    upstream = publish_vpkg(UpstreamServer("html").start(), tree.house)
    for dist in tree.dists.values():
        upstream.add_dist(dist)
    config = write_config(root / "mirror.toml", root / "cache-a", upstream)
    mirrored = cli(
        "mirror", "mapp", "--config", config, "--profile", "gpu", "--profile", "v3cpu",
        "--python", HOST_PYTHON, "--python", OTHER_PYTHON, "--platform", PLATFORM,
    )  # fmt: skip
    assert mirrored.returncode == 0, mirrored.stderr
    bundle = root / "bundle.tar"
    exported = cli("export", bundle, "--config", config)
    assert exported.returncode == 0, exported.stderr
    imported = cli("import", bundle, "--config", config, "--cache-dir", root / "cache-b")
    assert imported.returncode == 0, imported.stderr
    yield Mirrored(
        tree, upstream, config, root / "cache-a", root / "cache-b", bundle, mirrored.stderr
    )
    upstream.close()


def snapshot(cache_dir: Path) -> dict[str, Any]:
    """What the cache holds: store index rows, stored files, page-cache entries."""
    from proxy.pages.cache import PAGE_CACHE_DIR, PageCache

    with sqlite3.connect(cache_dir / "store" / "index.sqlite3") as db:
        rows = sorted(db.execute("SELECT key, size, sha256 FROM files").fetchall())
    files = sorted(
        str(p.relative_to(cache_dir)) for p in (cache_dir / "store" / "files").rglob("*")
    )
    pages = PageCache(cache_dir / PAGE_CACHE_DIR)
    try:
        entries = {}
        for key in pages.all_keys():
            page = pages.get(key)
            entries[key] = (page.digest, page.fetched_at) if page is not None else None
    finally:
        pages.close()
    return {"rows": rows, "files": files, "pages": entries}


@pytest.fixture
def partial_cache(mirrored: Mirrored, tmp_path: Path) -> Path:
    """A cache that already holds part of the mirror (one project's bundle)."""
    part = tmp_path / "part.tar"
    assert cli("export", part, "--config", mirrored.config, "--project", "deplib").returncode == 0
    cache = tmp_path / "cache"
    assert cli("import", part, "--cache-dir", cache).returncode == 0
    return cache
