"""Air-gapped mirrors with real pip and uv: `mirror` a dependency tree with variant wheels
for two hardware profiles x two Pythons, `export` it, `import` it into a fresh cache, and
serve that cache `--offline` inside a network namespace with no route out, where pip gets
each profile's build with every dependency. Also: damaged and interrupted imports leave the
cache as it was, the static export installs over file:// with no proxy, and mirror reports
progress and what it could not resolve.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .builders import build_wheel
from .clients import (
    build_marker,
    http_get,
    installed_versions,
    pip_environment,
    pip_install,
    read_page,
    wait_until,
)
from .mirror_support import (
    EXPECTED_BUILD,
    OTHER_PYTHON,
    PROFILES,
    Mirrored,
    cli,
    snapshot,
    write_config,
)
from .proxy_process import ProxyLauncher, proxy_config
from .upstream_server import UpstreamServer
from .variant_support import PROJECT

pytestmark = pytest.mark.e2e

DRIVER = Path(__file__).with_name("offline_driver.py")


def _targets(cache_dir: Path) -> dict[str, Any]:
    targets: dict[str, Any] = json.loads((cache_dir / "mirror" / "targets.json").read_text())[
        "targets"
    ]
    return targets


def test_mirror_resolves_every_target_with_its_own_markers(mirrored: Mirrored) -> None:
    targets = _targets(mirrored.imported_cache)  # the record travelled in the bundle
    assert len(targets) == 4
    for label, target in targets.items():
        names = {path.split("/")[0] for path in target["files"]}
        wants_shim = f"Python {OTHER_PYTHON}" in label
        assert names == {"mapp", "vpkg", "deplib"} | ({"shim"} if wants_shim else set()), label
    gpu_build = mirrored.tree.house.variants["cu128"].sha256
    v3_build = mirrored.tree.house.variants["x86_64_v3"].sha256
    for label, target in targets.items():
        vpkg = [path for path in target["files"] if path.startswith("vpkg/")]
        expected = gpu_build if "profile=gpu" in label else v3_build
        assert vpkg == [f"vpkg/sha256-{expected}/vpkg-1.0-py3-none-any.whl"], label


def _unshare_reason() -> str | None:
    try:
        done = subprocess.run(
            ["unshare", "-n", "ip", "link", "set", "lo", "up"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare/ip not usable: {exc}"
    if done.returncode != 0:
        return f"no network namespace here (needs root): {done.stderr.strip()[:200]}"
    return None


def test_offline_mirror_in_a_network_namespace_installs_each_profiles_build(
    mirrored: Mirrored, tmp_path: Path
) -> None:
    reason = _unshare_reason()
    if reason is not None:
        pytest.skip(reason)
    config = write_config(tmp_path / "offline.toml", mirrored.imported_cache, mirrored.upstream)
    jobs: dict[str, list[str]] = {}
    for profile in PROFILES:
        index = f"{{url}}/p/{profile}/simple/"
        common = ["--index-url", index, "--retries", "0", "--no-cache-dir"]
        jobs[f"{profile}-install"] = [
            "install", "--target", str(tmp_path / profile), "--no-compile", *common, "mapp",
        ]  # fmt: skip
        jobs[f"{profile}-download"] = [
            "download", "--dest", str(tmp_path / f"{profile}-{OTHER_PYTHON}"),
            "--python-version", OTHER_PYTHON, "--only-binary=:all:", *common, "mapp",
        ]  # fmt: skip
    # A v4 machine on a mirror made for v3 gets the v3 build, not a link that 404s.
    jobs["v4-install"] = [
        "install", "--target", str(tmp_path / "v4"), "--no-compile", "--retries", "0",
        "--index-url", "{url}/hw/cpu=x86_64_v4/simple/", "vpkg",
    ]  # fmt: skip
    spec = {
        "python": sys.executable,
        "config": str(config),
        "upstream_port": mirrored.upstream.port,
        "pip_jobs": jobs,
        "gets": ["/health", "/simple/not-mirrored/"],
    }
    requests_before = len(mirrored.upstream.request_log())
    done = subprocess.run(
        ["unshare", "-n", sys.executable, str(DRIVER), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=600,
        env=pip_environment(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["upstream_reachable"] is False
    for name, outcome in result["pip"].items():
        assert outcome["rc"] == 0, f"{name}: {outcome['output']}"
    for profile, build in EXPECTED_BUILD.items():
        target = tmp_path / profile
        assert installed_versions(target) == {"mapp": "1.0", "vpkg": "1.0", "deplib": "1.0"}
        assert build_marker(target, PROJECT) == build
        downloaded = {p.name: p for p in (tmp_path / f"{profile}-{OTHER_PYTHON}").iterdir()}
        assert {"mapp-1.0-py3-none-any.whl", "deplib-1.0-py3-none-any.whl"} <= set(downloaded)
        variant = mirrored.tree.house.variants[build]
        assert downloaded["vpkg-1.0-py3-none-any.whl"].read_bytes() == variant.data
    assert build_marker(tmp_path / "v4", PROJECT) == "x86_64_v3"
    health = json.loads(result["gets"]["/health"]["body"])
    assert health["offline"] is True
    missing = result["gets"]["/simple/not-mirrored/"]
    assert missing["status"] == 404
    assert missing["body"].startswith("not in the offline mirror: project not-mirrored")
    assert len(mirrored.upstream.request_log()) == requests_before


def test_offline_pages_list_only_held_files_with_their_metadata(
    mirrored: Mirrored, proxy: ProxyLauncher
) -> None:
    config = proxy_config(mirrored.imported_cache, [("up", mirrored.upstream)], profiles=PROFILES)
    config["cache"]["offline"] = True
    requests_before = len(mirrored.upstream.request_log())
    offline = proxy.start(config)
    gpu = read_page(f"{offline.url}/p/gpu/simple/vpkg/")
    assert [f["filename"] for f in gpu["files"]] == ["vpkg-1.0-py3-none-any.whl"]
    # Nothing for a machine with no variant properties was mirrored (no null variant, no
    # plain wheel, no sdist): the page says so instead of listing links that 404.
    assert read_page(f"{offline.url}/hw/none/simple/vpkg/")["files"] == []
    for project in ("mapp", "deplib", "vpkg"):
        for entry in read_page(f"{offline.url}/p/v3cpu/simple/{project}/")["files"]:
            assert entry.get("core-metadata"), entry
            metadata = http_get(entry["url"] + ".metadata")
            assert metadata.status == 200
            assert b"Metadata-Version" in metadata.body
    assert http_get(f"{offline.url}/simple/").status == 404
    status = http_get(f"{offline.url}/").body.decode()
    assert re.search(r'id="health">health: <span class="badge ok">ok, offline: ', status)
    assert "offline: never contacted" in status
    assert len(mirrored.upstream.request_log()) == requests_before
    assert "Warning" not in {
        k.title() for k in http_get(f"{offline.url}/p/gpu/simple/vpkg/").headers
    }


def test_a_damaged_bundle_is_refused_and_the_cache_is_unchanged(
    mirrored: Mirrored, partial_cache: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    assert cli("export", bundle, "--config", mirrored.config).returncode == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    victim = max(manifest["files"], key=lambda f: f["size"])["member"]
    damaged = bytearray((bundle / victim).read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (bundle / victim).unlink()  # a hard link to the store's file: never write through it
    (bundle / victim).write_bytes(bytes(damaged))
    before = snapshot(partial_cache)
    refused = cli("import", bundle, "--cache-dir", partial_cache)
    assert refused.returncode == 1
    assert f"bundle member {victim} is damaged" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert snapshot(partial_cache) == before


def test_an_import_killed_half_way_leaves_the_cache_as_it_was(
    mirrored: Mirrored, partial_cache: Path, tmp_path: Path
) -> None:
    data = mirrored.bundle.read_bytes()
    fifo = tmp_path / "bundle.fifo"
    os.mkfifo(fifo)
    before = snapshot(partial_cache)
    importing = subprocess.Popen(
        [sys.executable, "-m", "proxy", "import", str(fifo), "--cache-dir", str(partial_cache)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    writer = open(fifo, "wb")  # noqa: SIM115 - closed below, after the kill
    # Half the bundle: the import stages what it can, then waits for the rest.
    feeding = threading.Thread(target=writer.write, args=(data[: len(data) // 2],))
    feeding.start()
    staging = partial_cache / "import-staging"
    assert wait_until(lambda: any(p.is_file() for p in staging.rglob("*")), timeout=60)
    importing.send_signal(signal.SIGKILL)
    assert importing.wait(timeout=30) == -signal.SIGKILL
    feeding.join(timeout=30)
    with contextlib.suppress(BrokenPipeError):
        writer.close()
    after = snapshot(partial_cache)
    assert after == before
    # The next import clears what the killed one staged and completes.
    assert cli("import", mirrored.bundle, "--cache-dir", partial_cache).returncode == 0
    assert not staging.exists()
    assert len(snapshot(partial_cache)["rows"]) > len(before["rows"])


def test_the_static_export_installs_over_file_urls_with_no_proxy(
    mirrored: Mirrored, tmp_path: Path
) -> None:
    tree = tmp_path / "static"
    done = cli(
        "export", tree, "--static", "--profile", "gpu", "--profile", "v3cpu",
        "--config", mirrored.config, "--cache-dir", mirrored.imported_cache,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for profile, build in EXPECTED_BUILD.items():
        target = tmp_path / profile
        pip_install((tree / "p" / profile / "simple").as_uri() + "/", ["mapp"], target)
        assert installed_versions(target) == {"mapp": "1.0", "vpkg": "1.0", "deplib": "1.0"}
        assert build_marker(target, PROJECT) == build
    wheels = list((tree / "files").rglob("*.whl"))
    assert wheels and all(w.stat().st_nlink > 1 for w in wheels)  # linked, not copied
    assert (tree / "native" / "simple" / "vpkg" / "index.html").is_file()


def test_mirror_names_what_it_could_not_resolve_and_for_which_target(
    mirrored: Mirrored, tmp_path: Path
) -> None:
    done = cli(
        "mirror", "mapp", "no-such-project", "--config", mirrored.config,
        "--cache-dir", tmp_path / "cache", "--profile", "gpu", "--python", OTHER_PYTHON,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"could not resolve for profile=gpu, Python {OTHER_PYTHON}" in done.stderr
    assert "no-such-project" in done.stderr
    assert "Traceback" not in done.stderr


def test_mirroring_a_larger_set_shows_steady_progress(tmp_path: Path) -> None:
    wheels = tmp_path / "bulk"
    members = [build_wheel(wheels, f"bulk-{n:02d}", "1.0") for n in range(40)]
    everything = build_wheel(wheels, "bulk-all", "1.0", requires_dist=[d.project for d in members])
    with UpstreamServer("html") as upstream:
        for dist in [*members, everything]:
            upstream.add_dist(dist)
        config = write_config(tmp_path / "bulk.toml", tmp_path / "cache", upstream)
        done = cli("mirror", "bulk-all", "--config", config, "--hw", "cpu=x86_64_v3")
        page_requests = Counter(
            path for _, path, _ in upstream.request_log() if path.startswith("/simple/bulk-")
        )
    assert done.returncode == 0, done.stderr
    # Each page is asked about once a run: uv's pages, its metadata files, the plan and the
    # fetch all find it fresh after that (it was five times, with the page TTLs at 0).
    expected = Counter({f"/simple/{d.project}/": 1 for d in [*members, everything]})
    assert page_requests == expected, page_requests
    counts = [
        (int(m.group(1)), int(m.group(2)))
        for m in re.finditer(r"^mirror: (\d+)/(\d+) files, ", done.stderr, re.MULTILINE)
    ]
    total = counts[-1][1]
    assert total == 82  # 41 wheels and their PEP 658 metadata files
    assert len(counts) >= 20
    assert [done for done, _ in counts] == sorted(done for done, _ in counts)
    assert counts[-1] == (total, total)
    assert re.search(r"^mirror: 82/82 files, .* 1/1 targets resolved$", done.stderr, re.MULTILINE)


def test_mirror_through_a_running_proxy_fills_its_cache(
    mirrored: Mirrored, proxy: ProxyLauncher, tmp_path: Path
) -> None:
    config = proxy_config(proxy.new_cache_dir(), [("up", mirrored.upstream)], profiles=PROFILES)
    running = proxy.start(config)
    done = cli("mirror", "mapp", "--proxy", running.url, "--profile", "v3cpu")
    assert done.returncode == 0, done.stderr
    running.stop()
    running.config["cache"]["offline"] = True
    offline = running.start()
    pip_install(f"{offline.url}/p/v3cpu/simple/", ["mapp"], tmp_path / "target")
    assert build_marker(tmp_path / "target", PROJECT) == "x86_64_v3"
