"""Mirrors beside live services: `import` into a cache a proxy is serving (pip then installs
the new projects from that proxy), `export` of a cache whose files live in an S3 bucket
(`[cache.s3]`, the real Ceph RGW), and `mirror`'s progress bar on a real terminal (a pty).
Also: `export --since`, and a rerun of `mirror` that adds a target and a new release.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from .builders import build_wheel
from .clients import build_marker, http_get, installed_versions, pip_install
from .cluster_services import ClusterServices, fresh_bucket_name
from .mirror_support import PROFILES, Mirrored, cli, write_config
from .proxy_process import ProxyLauncher, proxy_config
from .upstream_server import Throttle, UpstreamServer
from .variant_support import PROJECT

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_an_import_beside_a_serving_proxy_is_served_at_once(
    mirrored: Mirrored, partial_cache: Path, proxy: ProxyLauncher, tmp_path: Path
) -> None:
    config = proxy_config(partial_cache, [("up", mirrored.upstream)], profiles=PROFILES)
    config["cache"]["offline"] = True
    serving = proxy.start(config)
    index = f"{serving.url}/p/v3cpu/simple/"
    assert http_get(index + "mapp/").status == 404  # only deplib was imported so far
    done = cli("import", mirrored.bundle, "--cache-dir", partial_cache)
    assert done.returncode == 0, done.stderr
    assert re.search(r"import: [1-9]\d* files added", done.stderr), done.stderr
    # The same proxy, never restarted, serves what the import added.
    pip_install(index, ["mapp"], tmp_path / "target")
    assert installed_versions(tmp_path / "target") == {
        "mapp": "1.0",
        "vpkg": "1.0",
        "deplib": "1.0",
    }
    assert build_marker(tmp_path / "target", PROJECT) == "x86_64_v3"
    health = json.loads(http_get(f"{serving.url}/health").body)
    assert health["offline"] is True
    # A second import of the same bundle beside it adds nothing and keeps it serving.
    again = cli("import", mirrored.bundle, "--cache-dir", partial_cache)
    assert again.returncode == 0, again.stderr
    assert "import: 0 files added" in again.stderr
    assert http_get(index + "mapp/").status == 200


def _manifest(bundle: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((bundle / "manifest.json").read_text())
    return manifest


def test_export_reads_files_from_the_s3_bucket_the_local_disk_lacks(
    cluster_services: ClusterServices, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in cluster_services.environment().items():
        monkeypatch.setenv(name, value)
    wheels = tmp_path / "wheels"
    dists = [
        build_wheel(wheels, "s3lib", "1.0", payload_size=300_000),
        build_wheel(wheels, "s3app", "1.0", requires_dist=["s3lib"]),
    ]
    with UpstreamServer("html") as upstream:
        for dist in dists:
            upstream.add_dist(dist)
        cache = tmp_path / "cache"
        config = proxy_config(cache, [("up", upstream)], profiles=PROFILES)
        config["cache"]["s3"] = cluster_services.s3_section(fresh_bucket_name(), "files/")
        config_path = tmp_path / "s3.toml"
        config_path.write_text(tomli_w.dumps(config))
        mirrored = cli("mirror", "s3app", "--config", config_path, "--profile", "v3cpu")
        assert mirrored.returncode == 0, mirrored.stderr
    local = tmp_path / "local-bundle"
    assert cli("export", local, "--config", config_path).returncode == 0
    expected = {(f["key"], f["sha256"]) for f in _manifest(local)["files"]}
    assert len(expected) == 4  # two wheels and their PEP 658 metadata files
    shutil.rmtree(cache / "store")  # the local disk lost every file; the bucket has them
    without_s3 = tmp_path / "without-s3"
    assert cli("export", without_s3, "--cache-dir", cache).returncode == 0
    assert _manifest(without_s3)["files"] == []
    from_bucket = tmp_path / "bucket-bundle.tar"
    exported = cli("export", from_bucket, "--config", config_path)
    assert exported.returncode == 0, exported.stderr
    assert not list(tmp_path.glob("*.fetching"))  # the scratch folder is gone
    far = tmp_path / "far-cache"
    imported = cli("import", from_bucket, "--cache-dir", far)  # checks every hash
    assert imported.returncode == 0, imported.stderr
    assert "import: 4 files added" in imported.stderr
    far_bundle = tmp_path / "far-bundle"
    assert cli("export", far_bundle, "--cache-dir", far).returncode == 0
    assert {(f["key"], f["sha256"]) for f in _manifest(far_bundle)["files"]} == expected
    for member in _manifest(far_bundle)["files"]:
        assert (far_bundle / member["member"]).read_bytes() == (
            local / member["member"]
        ).read_bytes()


def _run_on_a_terminal(args: list[str], timeout: float = 300.0) -> tuple[int, str]:
    """Run `python -m proxy ARGS` with a pty (120 columns) as its terminal; (rc, output)."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(TERM="xterm-256color", COLUMNS="120", PYTHONUNBUFFERED="1")
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(leader, 65536)
            except OSError as exc:  # EIO: the terminal's other side is closed
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            output += data
        return process.wait(timeout=30), output.decode("utf-8", errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)


def test_mirror_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    wheels = tmp_path / "bulk"
    members = [
        build_wheel(wheels, f"bar-{n:02d}", "1.0", payload_size=384 * 1024) for n in range(16)
    ]
    everything = build_wheel(wheels, "bar-all", "1.0", requires_dist=[d.project for d in members])
    with UpstreamServer("html") as upstream:
        for dist in [*members, everything]:
            upstream.add_dist(dist)
        config = proxy_config(tmp_path / "cache", [("up", upstream)])
        config_path = tmp_path / "bar.toml"
        config_path.write_text(tomli_w.dumps(config))
        # Slow enough for the bar to be drawn many times (10 a second).
        upstream.throttle = Throttle(chunk_size=32 * 1024, delay=0.02)
        rc, raw = _run_on_a_terminal(
            [
                "mirror",
                "bar-all",
                "--config",
                str(config_path),
                "--hw",
                "cpu=x86_64_v3",
                "--jobs",
                "2",
            ]
        )
    assert rc == 0, raw[-2000:]
    assert "\x1b[" in raw  # drawn with terminal control sequences, not printed as lines
    screen = ANSI.sub("", raw)
    files = [(int(a), int(b)) for a, b in re.findall(r"mirror (\d+)/(\d+) files", screen)]
    assert files and {total for _, total in files} == {34}  # 17 wheels + their metadata
    done = [count for count, _ in files]
    assert done == sorted(done) and len(set(done)) >= 5, done  # it advanced, step by step
    assert done[-1] == 34
    # Bytes so far and their rate (an HTML upstream lists no sizes: no total), advancing.
    shown = re.findall(r"(\d+(?:\.\d+)? (?:B|KB|MB)) +\d+(?:\.\d+)? (?:B|KB|MB)/s", screen)
    assert len(set(shown)) >= 3, shown
    assert re.search(r"/s +\d:\d\d:\d\d", screen)  # the rate, then the time left
    assert not re.search(r"^mirror: \d+/\d+ files, .* of ", screen, re.MULTILINE)  # no plain lines
    assert re.search(r"mirror: 34/34 files, .* 1/1 targets resolved", screen)


def test_export_since_a_date_holds_only_what_was_fetched_since(
    mirrored: Mirrored, tmp_path: Path
) -> None:
    whole = tmp_path / "whole"
    assert cli("export", whole, "--config", mirrored.config).returncode == 0
    since_then = tmp_path / "since-2000"
    assert (
        cli("export", since_then, "--config", mirrored.config, "--since", "2000-01-01").returncode
        == 0
    )
    for part in ("pages", "files"):
        assert _manifest(since_then)[part] == _manifest(whole)[part]
    later = tmp_path / "since-2999"
    assert (
        cli("export", later, "--config", mirrored.config, "--since", "2999-01-01").returncode == 0
    )
    assert (_manifest(later)["pages"], _manifest(later)["files"]) == ([], [])
    bad = cli("export", tmp_path / "bad", "--config", mirrored.config, "--since", "yesterday")
    assert bad.returncode == 2
    assert "--since: not an ISO date 'yesterday'" in bad.stderr


def test_a_rerun_adds_targets_and_picks_up_new_releases(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    with UpstreamServer("html") as upstream:
        upstream.add_dist(build_wheel(wheels, "rerun-app", "1.0"))
        config = write_config(tmp_path / "rerun.toml", tmp_path / "cache", upstream)
        first = cli("mirror", "rerun-app", "--config", config, "--profile", "v3cpu")
        assert first.returncode == 0, first.stderr
        upstream.add_dist(build_wheel(wheels, "rerun-app", "2.0"))
        asked_before = len(upstream.request_log())
        second = cli("mirror", "rerun-app", "--config", config, "--profile", "gpu")
        assert second.returncode == 0, second.stderr
        asked = [path for _, path, _ in upstream.request_log()[asked_before:]]
    # The page cached by the first run is asked about again, once: so 2.0 is found.
    assert asked.count("/simple/rerun-app/") == 1, asked
    targets = json.loads((tmp_path / "cache" / "mirror" / "targets.json").read_text())["targets"]
    assert len(targets) == 2  # the first run's target is kept, the second's added
    wheels_of = {
        label: [path.rsplit("/", 1)[1] for path in target["files"]]
        for label, target in targets.items()
    }
    assert sorted(wheels_of.values()) == [
        ["rerun_app-1.0-py3-none-any.whl"],
        ["rerun_app-2.0-py3-none-any.whl"],
    ]
    bundle = tmp_path / "bundle"
    assert cli("export", bundle, "--config", config).returncode == 0
    assert len(_manifest(bundle)["files"]) == 4  # both releases and their metadata stay
