"""What a new user does first: a fresh clone's suite needs nothing beside the clone, the
shipped `config.example.toml` serves as it is (the embedded default upstream), and the cache
directory looks as the README's on-disk layout says.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.pages.cache import PAGE_CACHE_DIR

from .catalogue import Wheelhouse
from .clients import http_get, installed_versions, pip_install
from .upstream_server import UpstreamFactory

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_fresh_clone_needs_nothing_beside_it(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout (or no git): cannot make a fresh clone")
    clone = tmp_path / "lonely" / "variant-proxy"  # no ../shared beside it
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    assert not (clone.parent.parent / "shared").exists()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            "tests/unit/test_wheelnext_fixtures.py",
            "tests/unit/test_docs.py",
        ],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.splitlines()[-1]
    assert re.search(r"\d+ passed, 2 skipped", summary), result.stdout[-2000:]
    assert "not beside this clone" in result.stdout
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert collected.returncode == 0, collected.stdout[-3000:]
    assert "error" not in collected.stdout.splitlines()[-1], collected.stdout[-2000:]


def test_config_example_serves_as_shipped(
    make_upstream: UpstreamFactory, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    # The example sets no upstream: the index pip is configured with is used (here, through
    # PIP_INDEX_URL, a loopback upstream), and no example rule changes what clients get.
    upstream = make_upstream()
    cache = tmp_path / "cache"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    environment.update(PIP_INDEX_URL=upstream.index_url, PIP_CONFIG_FILE=os.devnull)
    command = [
        sys.executable,
        "-m",
        "proxy",
        "serve",
        "--config",
        str(REPO / "config.example.toml"),
        "--port",
        "0",
        "--cache-dir",
        str(cache),
    ]
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        started = process.stderr.readline()
        match = re.search(r"serving on (http://[^\s\"]+)", started)
        assert match, started
        url = match.group(1)
        page = http_get(f"{url}/simple/demo-lib/")
        assert page.status == 200 and page.header("Variant-Fingerprint-Source") == "none"
        assert (page.header("Cache-Control") or "").startswith("public, ")
        pip_install(f"{url}/simple/", ["demo-app"], tmp_path / "target")
        assert installed_versions(tmp_path / "target") == {"demo-app": "1.0", "demo-lib": "1.0"}
    finally:
        process.terminate()
        process.wait(timeout=30)
    # The layout the README describes.
    assert (cache / PAGE_CACHE_DIR).is_dir()
    store = cache / "store"
    for name in ("lock", "index.sqlite3", "tmp"):
        assert (store / name).exists(), name
    kept = [path for path in (store / "files" / "v1").glob("*/*") if path.is_file()]
    assert len(kept) >= 2 and all(re.fullmatch(r"[0-9a-f]{2}", p.parent.name) for p in kept)
    assert {p.name for p in kept} >= {
        f"sha256-{wheelhouse['demo-app-1.0'].sha256}",
        f"sha256-{wheelhouse['demo-lib-1.0'].sha256}",
    }
