"""Local index benchmark: what a directory upstream's page costs, cold and warm.

    .venv/bin/python -m bench.local_index [--files 500] [--size 200000] [--rounds 5]

In process (no server). A project folder of `--files` wheels (`--size` bytes each) is read
the way the directory upstream reads it on every page fetch: the scan (stat + cached facts)
and the page build and render (memoised while no file changed: the warm page fetch).
Side by side, alternating, medians of `--rounds`:
a cold scan (fresh fact cache: every file hashed and its METADATA read), a warm re-scan
(facts cached by path, size, mtime, inode), and the peer a cache-less re-scan would cost:
hashing every file again. Prints a table; never fails on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from proxy.config import DirectorySettings
from proxy.local.page import build_directory_page
from proxy.local.scan import DirectoryScanner
from proxy.simple.api import render_project_json
from proxy.simple.names import normalize_name
from proxy.upstreams.directory import DirectorySource


def _wheel(name: str, version: str, size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/payload.bin", bytes(size))
        archive.writestr(
            f"{name}-{version}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n",
        )
    return buffer.getvalue()


def _make(root: Path, files: int, size: int) -> None:
    folder = root / "bench-lib"
    folder.mkdir()
    for i in range(files):
        version = f"1.{i}"
        (folder / f"bench_lib-{version}-py3-none-any.whl").write_bytes(
            _wheel("bench_lib", version, size)
        )


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _hash_all(root: Path) -> None:
    for path in (root / "bench-lib").iterdir():
        hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-local-") as temporary:
        root = Path(temporary)
        _make(root, args.files, args.size)
        warm = DirectoryScanner(root)
        warm.project_files("bench-lib")
        figures: dict[str, list[float]] = {
            "cold scan": [],
            "warm re-scan": [],
            "page build + render": [],
            "warm page fetch (source)": [],
            "peer: hash every file": [],
        }
        files = warm.project_files("bench-lib")
        source = DirectorySource(DirectorySettings("bench", root), warm)
        url = source.project_url(normalize_name("bench-lib"))
        loop = asyncio.new_event_loop()
        loop.run_until_complete(source.fetch_page(url))
        for _ in range(args.rounds):
            figures["cold scan"].append(
                _timed(lambda: DirectoryScanner(root).project_files("bench-lib"))
            )
            figures["warm re-scan"].append(_timed(lambda: warm.project_files("bench-lib")))
            figures["page build + render"].append(
                _timed(
                    lambda: render_project_json(
                        build_directory_page("bench-lib", files, lambda p: "file:///" + p).page
                    )
                )
            )
            figures["warm page fetch (source)"].append(
                _timed(lambda: loop.run_until_complete(source.fetch_page(url)))
            )
            figures["peer: hash every file"].append(_timed(lambda: _hash_all(root)))
        loop.close()
    print(f"{args.files} wheels of {args.size} bytes, medians of {args.rounds} rounds")
    for name, samples in figures.items():
        print(f"  {name:<24} {statistics.median(samples) * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
